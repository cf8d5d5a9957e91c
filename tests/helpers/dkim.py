"""DKIM keys on disk and two independent verifiers for what the signer writes: dkimpy (the
public keys through its `dnsfunc=`) and Perl's Mail::DKIM (tests/helpers/dkim_verify.pl,
the public keys served from a file by a stub resolver)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import dkim
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.send.dkim import PrivateKey, dns_record, write_private_key
from tests.helpers.ci import missing
from tests.helpers.paths import ROOT

DOMAIN = "news.example.org"
PERL_SCRIPT = ROOT / "tests" / "helpers" / "dkim_verify.pl"


def key_file(path: Path, kind: str = "rsa", bits: int = 2048) -> PrivateKey:
    """A new key of `kind` written to `path` (PKCS#8 PEM), returned."""
    key: PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(public_exponent=65537, key_size=bits)
    )
    write_private_key(path, key)
    return key


def records(keys: Mapping[str, PrivateKey], domain: str = DOMAIN) -> dict[str, str]:
    """{"selector._domainkey.domain": TXT value} for each selector's key."""
    return {f"{selector}._domainkey.{domain}": dns_record(k) for selector, k in keys.items()}


def dkimpy_results(message: bytes, published: Mapping[str, str]) -> list[bool]:
    """dkimpy's verdict on each DKIM-Signature of `message`, top first."""

    def dns(name: bytes, timeout: float = 5) -> bytes:
        value = published.get(name.decode("ascii").rstrip("."))
        return value.encode("ascii") if value is not None else b""

    def verify(index: int) -> bool:
        try:
            return bool(verifier.verify(idx=index, dnsfunc=dns))
        except dkim.DKIMException:  # a body hash mismatch is raised, not returned
            return False

    verifier = dkim.DKIM(message)
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    return [verify(index) for index in range(count)]


@functools.cache
def _perl_problem() -> str | None:
    if shutil.which("perl") is None:
        return "perl is not installed"
    # Crypt::PK::Ed25519 (libcryptx-perl) checks Ed25519 signatures for a Mail::DKIM that
    # predates RFC 8463 (tests/helpers/dkim_verify.pl).
    for module, package in (("Mail::DKIM::Verifier", "libmail-dkim-perl"),
                            ("Crypt::PK::Ed25519", "libcryptx-perl")):  # fmt: skip
        done = subprocess.run(["perl", f"-M{module}", "-MNet::DNS", "-e1"], capture_output=True)
        if done.returncode != 0:
            return f"Perl's {module} is missing (Debian package {package})"
    return None


def perl_results(
    messages: Sequence[bytes], published: Mapping[str, str], folder: Path
) -> list[dict[str, str]]:
    """Mail::DKIM's verdict on each message: {algorithm: result detail} per signature, and
    "result" for the message as a whole. Missing Perl modules: `missing` (fail in CI)."""
    problem = _perl_problem()
    if problem is not None:
        missing(problem)
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "records.tsv"
    table.write_text("".join(f"{n}\t{v}\n" for n, v in published.items()), encoding="ascii")
    files = []
    for number, message in enumerate(messages):
        files.append(folder / f"{number:05d}.eml")
        files[-1].write_bytes(message)
    done = subprocess.run(
        ["perl", str(PERL_SCRIPT), str(table), *map(str, files)],
        capture_output=True,
        text=True,
        check=True,
    )
    verdicts = []
    for line in done.stdout.splitlines():
        _name, result, *each = line.split("\t")
        verdicts.append({"result": result} | dict(item.split("=", 1) for item in each))
    assert len(verdicts) == len(messages), done.stderr
    return verdicts
