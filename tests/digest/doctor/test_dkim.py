"""doctor's DKIM check: RSA and Ed25519 keys (and a second key) give the TXT record to
publish; a missing, unreadable, weak or unusable key fails; no key warns."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from digest.config import Settings
from digest.doctor.dkim import dkim_check
from digest.send.dkim import dns_record, txt_record
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
    published = txt_record("mail", "news.example.org", key)
    assert published.startswith('mail._domainkey.news.example.org TXT "v=DKIM1; k=rsa; p=')
    assert published in check.detail
    assert "".join(published.split('"')[1::2]) == record  # 255-byte strings, joined back


def test_the_record_is_named_after_dkim_domain_when_set(settings: Settings, tmp_path: Path) -> None:
    rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", domain="example.org"))
    assert "mail._domainkey.example.org TXT" in check.detail


def test_an_ed25519_key_is_accepted_with_its_record(settings: Settings, tmp_path: Path) -> None:
    key = ed25519_key_file(tmp_path / "dkim.pem")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    assert dns_record(key) == expected
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "ok"
    assert f'mail._domainkey.news.example.org TXT "{expected}"' in check.detail


def test_a_second_key_is_checked_and_its_record_printed(settings: Settings, tmp_path: Path) -> None:
    ed25519_key_file(tmp_path / "ed.pem")
    second = rsa_key_file(tmp_path / "rsa.pem")
    both = _with_key(
        settings,
        tmp_path / "ed.pem",
        second_selector="rsa1",
        second_private_key_path=str(tmp_path / "rsa.pem"),
    )
    check = dkim_check(both)
    assert check.status == "ok"
    assert "k=ed25519" in check.detail
    assert txt_record("rsa1", "news.example.org", second) in check.detail
    (tmp_path / "rsa.pem").write_text("not a key\n", encoding="utf-8")
    check = dkim_check(both)
    assert check.status == "fail"
    assert "dkim.second_private_key_path" in check.detail


def test_a_short_rsa_key_fails_as_too_weak(settings: Settings, tmp_path: Path) -> None:
    rsa_key_file(tmp_path / "dkim.pem", bits=1024)
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem"))
    assert check.status == "fail"
    assert "1024-bit RSA key: too weak" in check.detail
    assert "digest dkim keygen" in check.fix


def test_a_key_of_the_wrong_algorithm_fails(settings: Settings, tmp_path: Path) -> None:
    ed25519_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", algorithm="rsa"))
    assert check.status == "fail"
    assert "is an ed25519 key" in check.detail


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
    assert "dkim.selector" in check.fix


def test_no_key_warns_that_dkim_is_off(settings: Settings) -> None:
    check = dkim_check(settings)
    assert check.status == "warn"
    assert "DKIM is off" in check.detail
