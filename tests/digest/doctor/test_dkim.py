"""doctor's DKIM check: RSA and Ed25519 keys give the TXT record to publish; a missing,
unreadable or unusable key fails; no key warns."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from digest.config import Settings
from digest.doctor.dkim import dkim_check, dns_record
from tests.helpers.doctor import ed25519_key_file, rsa_key_file, tweak


def _with_key(settings: Settings, path: Path, **dkim: str) -> Settings:
    values = {"selector": "mail", "domain": "", "private_key_path": str(path), **dkim}
    return tweak(settings, dkim=values)


def test_an_rsa_key_prints_its_txt_record(settings: Settings, tmp_path: Path) -> None:
    key = rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    assert check.status == "ok"
    assert f'mail._domainkey.news.example.org TXT "{record}"' in check.detail


def test_the_record_is_named_after_dkim_domain_when_set(settings: Settings, tmp_path: Path) -> None:
    rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", domain="example.org"))
    assert "mail._domainkey.example.org TXT" in check.detail


def test_an_ed25519_key_prints_its_record_but_fails_as_the_signer_is_rsa_only(
    settings: Settings, tmp_path: Path
) -> None:
    key = ed25519_key_file(tmp_path / "dkim.pem")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    assert dns_record(key) == expected
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "fail"
    assert expected in check.detail
    assert "not a PEM RSA private key" in check.detail
    assert "openssl genrsa" in check.fix


def test_a_short_rsa_key_warns(settings: Settings, tmp_path: Path) -> None:
    rsa_key_file(tmp_path / "dkim.pem", bits=1024)
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "warn"
    assert "1024 bits" in check.detail


def test_a_missing_key_file_fails(settings: Settings, tmp_path: Path) -> None:
    check = dkim_check(_with_key(settings, tmp_path / "absent.pem"))
    assert check.status == "fail"
    assert "cannot be read" in check.detail


def test_an_unreadable_key_path_fails(settings: Settings, tmp_path: Path) -> None:
    # A folder where the key should be: unreadable as a file for every user, root too.
    (tmp_path / "dkim.pem").mkdir()
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "fail"
    assert "cannot be read" in check.detail
    assert "permissions" in check.fix


def test_a_file_that_is_not_a_key_fails(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "dkim.pem").write_text("not a key\n", encoding="utf-8")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "fail"
    assert "not an unencrypted PEM private key" in check.detail


def test_a_key_without_a_selector_fails(settings: Settings, tmp_path: Path) -> None:
    rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", selector=""))
    assert check.status == "fail"
    assert check.fix == "set dkim.selector"


def test_no_key_warns_that_dkim_is_off(settings: Settings) -> None:
    check = dkim_check(settings)
    assert check.status == "warn"
    assert "DKIM is off" in check.detail
