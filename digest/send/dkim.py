"""DKIM signatures (RFC 6376) on `cryptography`: RSA-SHA256 and Ed25519-SHA256 (RFC 8463),
relaxed/relaxed canonicalisation, one or two keys (the double signature RFC 8463 recommends).

Signing follows how `mime.MessageTemplate` builds a segment's messages: `DkimSigner.segment`
canonicalises and hashes, once per segment, the headers every message shares; per message
`SegmentSigning.sign` canonicalises only the headers that differ, hashes the body and signs
one SHA-256 digest per key. Both algorithms sign that digest (RFC 8463 §3: Ed25519 signs the
hash), so the shared part of the hash is computed once and copied.

Keys are read and checked once, when the signer is built from the settings: a key that
cannot sign (unreadable, not a key, RSA under 2048 bits, the wrong kind) is a ConfigError
before anything is sent, never a message sent unsigned. The TXT record to publish for a key
(`txt_record`) lives here too: `digest dkim` and `digest doctor` print it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from digest.errors import ConfigError, InvalidInput
from digest.text.locators import hostname_problem

if TYPE_CHECKING:
    from digest.config import DkimSettings, SenderSettings

# RFC 8058 §4: both List-Unsubscribe headers MUST be signed; reply-to is signed when set.
DKIM_HEADERS: tuple[str, ...] = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
    "mime-version",
    "content-type",
)
SIGNED_WHEN_PRESENT: tuple[str, ...] = (*DKIM_HEADERS, "reply-to")
# Threads that make RSA signatures off the event loop (DkimKey.sign_off_loop).
POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="dkim")
MIN_RSA_BITS = 2048  # RFC 8301 allows 1024, but Gmail and Yahoo treat it as weak
RSA_BITS = (2048, 3072, 4096)
KINDS = ("rsa", "ed25519")
Kind = Literal["rsa", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
Clock = Callable[[], float]

_HEADER = re.compile(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_WSP = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb" (?=\r\n|\Z)")
_TRAILING_LINES = re.compile(rb"(?:\r\n)+\Z")
_FEW_SPACES = 64  # up to this many, spaces are checked one by one (see _is_canonical)
_TXT_CHUNK = 255  # RFC 1035 §3.3: a character-string holds at most 255 bytes
_B64_LINE = 72  # signature folded so header lines stay under 78 characters


def canonical_header(raw: bytes) -> tuple[str, bytes]:
    """RFC 6376 §3.4.2 relaxed: (lower-case name, `name:value` + CRLF), the value unfolded,
    white space runs made one space, none around the colon or at the end."""
    name, _, value = raw.partition(b":")
    value = _WSP.sub(b" ", _FOLD.sub(b"", value).removesuffix(b"\r\n")).strip(b" ")
    lowered = name.rstrip(b" \t").lower()
    return lowered.decode("ascii"), lowered + b":" + value + b"\r\n"


def canonical_body(body: bytes) -> bytes:
    """RFC 6376 §3.4.4 relaxed: no white space at line ends, runs made one space, no empty
    lines at the end, a non-empty body ends with CRLF.

    A MIME body of base64 parts (what `mime.py` writes) is already canonical: it is hashed as
    it is, without a copy, once `_is_canonical` has looked at its few spaces.
    """
    if _is_canonical(body):
        return body
    text = _TRAILING_WSP.sub(b"", _WSP.sub(b" ", body))
    text = _TRAILING_LINES.sub(b"", text)
    return text + b"\r\n" if text else b""


def _is_canonical(body: bytes) -> bool:
    """True when relaxed canonicalisation would not change `body` (False may be wrong, never
    True). Searching a 55 KB body for "  " or " CRLF" costs ~0.05 ms each; one memchr per
    space is far less when spaces are few, as in base64 parts."""
    if not body.endswith(b"\r\n") or body.endswith(b"\r\n\r\n") or body == b"\r\n" or b"\t" in body:
        return False
    at = body.find(b" ")
    for _ in range(_FEW_SPACES):
        if at == -1:
            return True
        if body[at + 1 : at + 2] in (b" ", b"\r"):  # a run of spaces, or one at a line end
            return False
        at = body.find(b" ", at + 1)
    return b"  " not in body and b" \r\n" not in body  # many spaces: search the whole body


def split_headers(block: bytes) -> list[bytes]:
    """The header fields of a CRLF header block, each with its folded lines and final CRLF."""
    fields: list[bytes] = _HEADER.findall(block)
    if sum(map(len, fields)) != len(block):
        raise ValueError("a header block must be whole CRLF-ended header fields")
    return fields


def dns_record(key: PrivateKey) -> str:
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


def txt_record(selector: str, domain: str, key: PrivateKey) -> str:
    """The zone-file line to publish: `S._domainkey.D TXT "..." "..."`, the value cut into
    strings of at most 255 bytes (a 2048-bit RSA record does not fit in one); resolvers
    join them back without a separator."""
    value = dns_record(key)
    strings = " ".join(f'"{value[i : i + _TXT_CHUNK]}"' for i in range(0, len(value), _TXT_CHUNK))
    return f"{selector}._domainkey.{domain} TXT {strings}"


def kind_of(key: PrivateKey) -> Kind:
    return "ed25519" if isinstance(key, ed25519.Ed25519PrivateKey) else "rsa"


def check_selector(selector: str, setting: str) -> str:
    """`selector` if DNS can name it (letters, digits, '-', dot-separated), else ConfigError."""
    problem = "is empty" if not selector else hostname_problem(selector, ip_allowed=False)
    if problem is not None:
        raise ConfigError(f"{setting} {selector!r} {problem}")
    return selector


def load_private_key(path: Path, setting: str, algorithm: str = "") -> PrivateKey:
    """The key in the PEM file at `path`, checked for signing; ConfigError naming `setting`
    when it cannot be read, is not an unencrypted RSA or Ed25519 key, is RSA under 2048
    bits, or is not of `algorithm` ("rsa" or "ed25519"; "" takes the key's own kind)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{setting} {path} cannot be read ({exc.strerror}): fix the path or the file's "
            "permissions (the user digest runs as must read it)"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):  # not PEM, or encrypted with a passphrase
        raise ConfigError(
            f"{setting} {path} is not an unencrypted PEM private key: make one with "
            "`digest dkim keygen`"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ConfigError(
            f"{setting} {path} holds a {type(key).__name__}: DKIM keys are RSA or Ed25519"
        )
    kind = kind_of(key)
    if algorithm and algorithm != kind:
        raise ConfigError(
            f"{setting} {path} is an {kind} key but the algorithm setting asks for {algorithm}"
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigError(
            f"{setting} {path} is a {key.key_size}-bit RSA key: too weak, receivers distrust "
            f"it; make a {MIN_RSA_BITS}-bit one with `digest dkim keygen`"
        )
    return key


def generate_key(kind: str, bits: int = MIN_RSA_BITS) -> PrivateKey:
    """A new key: Ed25519, or RSA of `bits` (one of RSA_BITS); InvalidInput otherwise."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind != "rsa":
        raise InvalidInput(f"algorithm {kind!r} is not one of {', '.join(KINDS)}")
    if bits not in RSA_BITS:
        raise InvalidInput(f"an RSA key has {', '.join(map(str, RSA_BITS))} bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_private_key(path: Path, key: PrivateKey) -> None:
    """`key` as PKCS#8 PEM in a new file readable by its owner only (0600); an existing file
    is never replaced (O_EXCL: no window between the check and the write)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInput(f"{path} already exists: a DKIM key is never overwritten") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One signing key, parsed once: d=`domain`, s=`selector`."""

    selector: str
    domain: str
    key: PrivateKey

    @property
    def algorithm(self) -> str:
        return f"{kind_of(self.key)}-sha256"

    def record(self) -> str:
        return txt_record(self.selector, self.domain, self.key)

    async def sign_off_loop(self, digest: bytes) -> bytes:
        """`sign(digest)`; an RSA signature is made in a thread of POOL, since `cryptography`
        releases the GIL while it computes (0.35 ms for 2048 bits): the event loop goes on
        meanwhile. Ed25519 (0.05 ms) costs less than the hand-over: it is made right here."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.sign(digest)
        return await asyncio.get_running_loop().run_in_executor(POOL, self.sign, digest)

    def sign(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 `digest` of the canonical headers."""
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(digest)  # RFC 8463 §3: PureEdDSA over the SHA-256 hash
        return self.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def _configured_key(selector: str, path: str, algorithm: str, domain: str, prefix: str) -> DkimKey:
    check_selector(selector, f"dkim.{prefix}selector")
    key = load_private_key(Path(path), f"dkim.{prefix}private_key_path", algorithm)
    return DkimKey(selector, domain, key)


def configured_keys(settings: DkimSettings, sender: SenderSettings) -> tuple[DkimKey, ...]:
    """The keys the settings name (none when dkim.private_key_path is empty); ConfigError
    naming the setting for any that cannot sign."""
    if not settings.private_key_path:
        if settings.second_private_key_path:
            raise ConfigError(
                "dkim.second_private_key_path is set but dkim.private_key_path is empty: "
                "set the first key, or empty both to disable DKIM"
            )
        return ()
    domain = settings.domain or sender.from_address.rpartition("@")[2]
    keys = [
        _configured_key(
            settings.selector, settings.private_key_path, settings.algorithm, domain, ""
        )
    ]
    if settings.second_private_key_path:
        keys.append(
            _configured_key(
                settings.second_selector,
                settings.second_private_key_path,
                settings.second_algorithm,
                domain,
                "second_",
            )
        )
        if keys[0].selector.lower() == keys[1].selector.lower():
            raise ConfigError(
                "dkim.second_selector is dkim.selector: each key needs its own selector "
                "(its own TXT record)"
            )
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs with every key in `keys` (one DKIM-Signature each); `clock` gives t=."""

    keys: tuple[DkimKey, ...]
    clock: Clock = field(default=time.time, compare=False)

    @classmethod
    def from_settings(
        cls, settings: DkimSettings, sender: SenderSettings, clock: Clock = time.time
    ) -> DkimSigner | None:
        """The signer the settings describe, or None when dkim.private_key_path is empty."""
        keys = configured_keys(settings, sender)
        return cls(keys, clock) if keys else None

    @property
    def domain(self) -> str:
        return self.keys[0].domain

    def segment(self, shared: bytes, varying: Sequence[str]) -> SegmentSigning:
        """Signing for messages whose header block `shared` is the same in all of them and
        whose other signed headers are named (lower case) in `varying`."""
        return SegmentSigning(self, shared, tuple(varying))


class SegmentSigning:
    """One segment's shared headers canonicalised and hashed once; `sign` does the rest."""

    __slots__ = ("_hash", "_prefixes", "_signer", "_varying")

    def __init__(self, signer: DkimSigner, shared: bytes, varying: tuple[str, ...]) -> None:
        canonical = dict(canonical_header(raw) for raw in split_headers(shared))
        names = [name for name in SIGNED_WHEN_PRESENT if name in canonical]
        self._varying = tuple(name for name in varying if name in SIGNED_WHEN_PRESENT)
        self._hash = hashlib.sha256(b"".join(canonical[name] for name in names))
        self._signer = signer
        listed = _fold_names([*names, *self._varying])
        self._prefixes = tuple(
            f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={key.domain};\r\n"
            f" s={key.selector}; h={listed};\r\n"
            for key in signer.keys
        )

    def sign(
        self, headers: Sequence[bytes], body: bytes, canonical_form: bytes | None = None
    ) -> bytes:
        """The DKIM-Signature header(s) for a message of this segment: `headers` are its
        other header fields, `body` its body (as the message holds them); `canonical_form`,
        when the caller knows it, is `canonical_body(body)`."""
        unsigned, digests = self._digests(headers, body, canonical_form)
        keys = self._signer.keys
        return _joined(unsigned, [key.sign(d) for key, d in zip(keys, digests, strict=True)])

    async def sign_off_loop(
        self, headers: Sequence[bytes], body: bytes, canonical_form: bytes | None = None
    ) -> bytes:
        """`sign`, the signatures made outside the event loop where the keys allow it."""
        unsigned, digests = self._digests(headers, body, canonical_form)
        keys = self._signer.keys
        if len(keys) == 1:
            signatures = [await keys[0].sign_off_loop(digests[0])]
        else:
            signatures = await asyncio.gather(
                *(key.sign_off_loop(d) for key, d in zip(keys, digests, strict=True))
            )
        return _joined(unsigned, signatures)

    def _digests(
        self, headers: Sequence[bytes], body: bytes, canonical_form: bytes | None
    ) -> tuple[list[bytes], list[bytes]]:
        """Each key's DKIM-Signature header up to `b=`, and the digest its key signs."""
        canonical = dict(canonical_header(raw) for raw in headers)
        state = self._hash.copy()
        state.update(b"".join(canonical[name] for name in self._varying))
        hashed = canonical_body(body) if canonical_form is None else canonical_form
        body_hash = base64.b64encode(hashlib.sha256(hashed).digest()).decode()
        stamp = f" t={int(self._signer.clock())}; bh={body_hash};\r\n b="
        unsigned, digests = [], []
        for prefix in self._prefixes:
            header = (prefix + stamp).encode("ascii")
            keyed = state.copy()
            keyed.update(canonical_header(header)[1].removesuffix(b"\r\n"))
            unsigned.append(header)
            digests.append(keyed.digest())
        return unsigned, digests


def _joined(unsigned: Sequence[bytes], signatures: Sequence[bytes]) -> bytes:
    return b"".join(h + _fold_b64(s) for h, s in zip(unsigned, signatures, strict=True))


def _fold_names(names: Sequence[str]) -> str:
    """h= names joined by colons, folded after a colon so no line passes 78 characters."""
    lines = [""]
    for name in names:
        piece = name if not lines[-1] else ":" + name
        if len(lines[-1]) + len(piece) > 60:
            lines[-1] += ":"
            lines.append(name)
        else:
            lines[-1] += piece
    return "\r\n ".join(lines)


def _fold_b64(signature: bytes) -> bytes:
    """b= value, folded: white space in b= is ignored by verifiers (RFC 6376 §3.5)."""
    encoded = base64.b64encode(signature)
    lines = [encoded[i : i + _B64_LINE] for i in range(0, len(encoded), _B64_LINE)]
    return b"\r\n ".join(lines) + b"\r\n"
