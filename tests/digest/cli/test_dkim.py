"""`digest dkim keygen` and `digest dkim show`: a private key only its owner reads, never
written over, and the exact TXT record for it; bad options are refused with exit code 2."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from digest.send.dkim import dns_record, load_private_key
from tests.helpers.cli import Cli
from tests.helpers.dkim import key_file


def _joined(line: str) -> str:
    """The TXT value of a zone-file line, its 255-byte strings joined back."""
    return "".join(re.findall(r'"([^"]*)"', line))


@pytest.mark.parametrize(
    ("options", "kind"),
    [((), "rsa"), (("--bits", "3072"), "rsa"), (("--algorithm", "ed25519"), "ed25519")],
)
def test_keygen_writes_a_0600_key_and_prints_its_record(
    cli: Cli, tmp_path: Path, options: tuple[str, ...], kind: str
) -> None:
    out = tmp_path / "new.pem"
    result = cli.ok("dkim", "keygen", "--selector", "s2026", "--out", str(out), *options)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = load_private_key(out, "test")
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f's2026._domainkey.news.example.org TXT "v=DKIM1; k={kind}; p=')
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', line))
    assert _joined(line) == dns_record(key)  # the record's key is the private key's
    if "--bits" in options:
        assert isinstance(key.key_size, int) and key.key_size == 3072  # type: ignore[union-attr]


def test_keygen_never_overwrites_a_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dkim.pem"
    out.write_bytes(b"precious")
    result = cli("dkim", "keygen", "--selector", "s1", "--out", str(out))
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert out.read_bytes() == b"precious"


def test_keygen_writes_dkim_selector_pem_by_default(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cli.ok("dkim", "keygen", "--selector", "s1", "--algorithm", "ed25519")
    assert (tmp_path / "dkim-s1.pem").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--algorithm", "dsa"), "--algorithm 'dsa' is not one of rsa, ed25519"),
        (("--bits", "1024"), "--bits is for RSA keys only and one of 2048, 3072, 4096"),
        (("--algorithm", "ed25519", "--bits", "2048"), "--bits is for RSA keys only"),
        (("--selector", "bad_one"), "--selector 'bad_one' is not a host name"),
    ],
)
def test_keygen_refuses_bad_options_with_exit_code_2(
    cli: Cli, tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "dkim.pem"
    result = cli("dkim", "keygen", "--selector", "s1", "--out", str(out), *options)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


def test_show_prints_the_record_of_each_configured_key(cli: Cli, tmp_path: Path) -> None:
    first = key_file(tmp_path / "ed.pem", "ed25519")
    second = key_file(tmp_path / "rsa.pem", "rsa")
    settings = [
        "--set", "dkim.selector=ed1",
        "--set", f"dkim.private_key_path={tmp_path / 'ed.pem'}",
        "--set", "dkim.second_selector=rsa1",
        "--set", f"dkim.second_private_key_path={tmp_path / 'rsa.pem'}",
    ]  # fmt: skip
    lines = cli.ok(*settings, "dkim", "show").stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == [
        "ed1._domainkey.news.example.org",
        "rsa1._domainkey.news.example.org",
    ]
    assert [_joined(line) for line in lines] == [dns_record(first), dns_record(second)]
    one = cli.ok(*settings[:4], "dkim", "show").stdout.strip().splitlines()
    assert one == lines[:1]


def test_show_refuses_when_dkim_is_off_or_the_key_is_bad(cli: Cli, tmp_path: Path) -> None:
    off = cli("dkim", "show")
    assert off.exit_code == 1 and "DKIM is off" in off.stderr
    (tmp_path / "k.pem").write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    path = f"dkim.private_key_path={tmp_path / 'k.pem'}"
    bad = cli("--set", "dkim.selector=s1", "--set", path, "dkim", "show")
    assert bad.exit_code == 2
    assert "dkim.private_key_path" in bad.stderr and "not an unencrypted PEM" in bad.stderr


def test_the_weak_and_wrong_kind_are_refused_by_show(cli: Cli, tmp_path: Path) -> None:
    key_file(tmp_path / "weak.pem", bits=1024)
    path = f"dkim.private_key_path={tmp_path / 'weak.pem'}"
    weak = cli("--set", "dkim.selector=s1", "--set", path, "dkim", "show")
    assert weak.exit_code == 2 and "too weak" in weak.stderr
    key_file(tmp_path / "ed.pem", "ed25519")
    wrong = cli(
        "--set", "dkim.selector=s1",
        "--set", f"dkim.private_key_path={tmp_path / 'ed.pem'}",
        "--set", "dkim.algorithm=rsa",
        "dkim", "show",
    )  # fmt: skip
    assert wrong.exit_code == 2 and "is an ed25519 key" in wrong.stderr
