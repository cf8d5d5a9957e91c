"""The DKIM key: readable, accepted by the signer the send path uses, and its public half
written out as the DNS TXT record to publish at `selector._domainkey.domain`."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.config import Settings
from digest.doctor.report import Check
from digest.errors import ConfigError
from digest.send.mime import DkimSigner

NAME = "dkim"
MIN_RSA_BITS = 1024  # receivers ignore shorter signatures (RFC 8301)
GOOD_RSA_BITS = 2048
MAKE_KEY = "openssl genrsa -out dkim.pem 2048"


def dns_record(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
    """The TXT record's value for `key`: RSA as its SubjectPublicKeyInfo (RFC 6376), Ed25519
    as the raw 32-byte public key (RFC 8463), both base64."""
    public = key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def dkim_check(settings: Settings) -> Check:
    """ok with the TXT record to publish; fail for a key that cannot be read or signed with;
    warn when DKIM is off or the RSA key is short."""
    dkim = settings.dkim
    if not dkim.private_key_path:
        return Check.warn(
            NAME,
            "DKIM is off (dkim.private_key_path is empty): Gmail and Yahoo want bulk mail signed",
            f"make a key (`{MAKE_KEY}`), set dkim.selector and dkim.private_key_path, and "
            "publish the TXT record doctor then prints",
        )
    path = Path(dkim.private_key_path)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        return Check.fail(
            NAME,
            f"dkim.private_key_path {path} cannot be read ({exc.strerror})",
            "fix the path or the file's permissions (the user digest runs as must read it)",
        )
    except (ValueError, TypeError) as exc:  # not PEM, or encrypted with a passphrase
        return Check.fail(
            NAME,
            f"dkim.private_key_path {path} is not an unencrypted PEM private key ({exc})",
            f"make a key without a passphrase: `{MAKE_KEY}`",
        )
    if not isinstance(loaded, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return Check.fail(
            NAME, f"{path} holds a {type(loaded).__name__}: DKIM keys are RSA or Ed25519", MAKE_KEY
        )
    domain = dkim.domain or settings.sender.from_address.rpartition("@")[2]
    record = f'{dkim.selector or "SELECTOR"}._domainkey.{domain} TXT "{dns_record(loaded)}"'
    try:
        DkimSigner.from_settings(dkim, settings.sender)
    except ConfigError as exc:
        fix = f"sign with an RSA key: `{MAKE_KEY}`" if dkim.selector else "set dkim.selector"
        return Check.fail(NAME, f"{exc}; the key's record would be {record}", fix)
    if isinstance(loaded, rsa.RSAPrivateKey) and loaded.key_size < GOOD_RSA_BITS:
        check = Check.fail if loaded.key_size < MIN_RSA_BITS else Check.warn
        return check(
            NAME,
            f"the RSA key has {loaded.key_size} bits; publish {record}",
            f"use a {GOOD_RSA_BITS}-bit key: `{MAKE_KEY}`",
        )
    return Check.ok(NAME, f"key {path} readable; publish {record}")
