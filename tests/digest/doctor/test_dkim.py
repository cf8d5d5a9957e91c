"""doctor's DKIM check: RSA and Ed25519 keys (and a second key) are read and compared with
the TXT record a real DNS server on loopback publishes (tests/helpers/dns_server.py): a
matching record is ok however it is written; a different, revoked, foreign or doubled record
fails naming the key's setting; an unpublished record, an error or a silent server warns with
the record to publish. A missing, unreadable, weak or unusable key fails; no key warns."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.rcode
import pytest
from cryptography.hazmat.primitives import serialization

from digest.config import Settings
from digest.doctor.dkim import dkim_check
from digest.send.dkim import PrivateKey, dns_record, txt_record
from tests.helpers.dns_server import DnsServer, dns_server, txt_strings
from tests.helpers.doctor import ed25519_key_file, rsa_key_file, tweak

FIRST = "mail._domainkey.news.example.org"


@pytest.fixture
def zone() -> Iterator[DnsServer]:
    with dns_server() as server:
        yield server


def _with_key(settings: Settings, path: Path, zone: DnsServer, **dkim: str) -> Settings:
    values = {
        "selector": "mail",
        "domain": "",
        "private_key_path": str(path),
        "nameserver": zone.address,
        **dkim,
    }
    return tweak(settings, dkim=values)


def _publish(
    zone: DnsServer, selector: str, key: PrivateKey, domain: str = "news.example.org"
) -> str:
    """Publishes `key`'s record as `txt_record` prints it (RSA in two strings); its name."""
    line = txt_record(selector, domain, key)
    name = line.split()[0]
    zone.records[name] = [txt_strings(line)]
    return name


@dataclass(frozen=True)
class UnderTest:
    """The key a test looks at: the first, or the second with a good first key beside it."""

    settings: Settings
    key: PrivateKey
    name: str  # where its record is published
    setting: str
    path: Path


@pytest.fixture(params=["first", "second"])
def under_test(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path, zone: DnsServer
) -> UnderTest:
    key = rsa_key_file(tmp_path / "rsa.pem")
    if request.param == "first":
        changed = _with_key(settings, tmp_path / "rsa.pem", zone)
        return UnderTest(changed, key, FIRST, "dkim.private_key_path", tmp_path / "rsa.pem")
    _publish(zone, "ed1", ed25519_key_file(tmp_path / "ed.pem"))
    both = _with_key(
        settings,
        tmp_path / "ed.pem",
        zone,
        selector="ed1",
        second_selector="mail",
        second_private_key_path=str(tmp_path / "rsa.pem"),
    )
    return UnderTest(both, key, FIRST, "dkim.second_private_key_path", tmp_path / "rsa.pem")


def test_a_record_split_in_two_strings_matches(under_test: UnderTest, zone: DnsServer) -> None:
    _publish(zone, "mail", under_test.key)
    assert len(zone.records[FIRST][0]) == 2  # RSA-2048: more than 255 bytes
    check = dkim_check(under_test.settings)
    assert (check.status, check.fix) == ("ok", "")
    assert f"{FIRST} published and matching" in check.detail
    assert FIRST in zone.queries


def test_a_record_written_differently_matches(under_test: UnderTest, zone: DnsServer) -> None:
    p = dns_record(under_test.key).rpartition("p=")[2]
    # k= omitted (it means rsa), other tags after p=, spaces around tags and inside p=, a
    # final ';', and the strings cut elsewhere than txt_record cuts them
    zone.records[FIRST] = [
        (f"v=DKIM1 ;  p = {p[:150]}", f" {p[150:300]}\t", f"{p[300:]} ; h=sha256 ; s=email;")
    ]
    check = dkim_check(under_test.settings)
    assert check.status == "ok", check.detail


def test_a_different_public_key_fails_naming_the_setting(
    under_test: UnderTest, zone: DnsServer, tmp_path: Path
) -> None:
    _publish(zone, "mail", rsa_key_file(tmp_path / "other.pem"))
    check = dkim_check(under_test.settings)
    assert check.status == "fail"
    assert (
        f"the TXT record at {FIRST} holds a different public key than {under_test.setting} "
        f"({under_test.path}): receivers will fail every signature"
    ) in check.detail
    assert f"publish {txt_record('mail', 'news.example.org', under_test.key)}" in check.fix
    assert f"or point {under_test.setting} at the key whose public half is published" in check.fix


def test_a_record_of_another_kind_fails(under_test: UnderTest, zone: DnsServer) -> None:
    p = dns_record(under_test.key).rpartition("p=")[2]
    zone.records[FIRST] = [(f"v=DKIM1; k=ed25519; p={p[:200]}", p[200:])]
    check = dkim_check(under_test.settings)
    assert check.status == "fail"
    assert f"holds a k=ed25519 key but {under_test.setting}" in check.detail
    assert "is an rsa key: receivers will fail every signature" in check.detail


def test_a_revoked_key_fails(under_test: UnderTest, zone: DnsServer) -> None:
    zone.records[FIRST] = [("v=DKIM1; k=rsa; p=",)]
    check = dkim_check(under_test.settings)
    assert check.status == "fail"
    assert f"the TXT record at {FIRST} revokes its key (empty p=)" in check.detail
    assert f"made with {under_test.setting} ({under_test.path})" in check.detail


def test_two_dkim_records_at_the_name_fail_as_ambiguous(
    under_test: UnderTest, zone: DnsServer
) -> None:
    _publish(zone, "mail", under_test.key)
    zone.records[FIRST].append(("v=DKIM1; k=rsa; p=",))
    check = dkim_check(under_test.settings)
    assert check.status == "fail"
    assert f"2 DKIM key records at {FIRST}" in check.detail
    assert "ambiguous" in check.detail
    assert (
        f"keep one TXT record there: {txt_record('mail', 'news.example.org', under_test.key)}"
        in check.fix
    )


def test_a_txt_record_that_is_not_dkim_fails_alone_and_is_ignored_beside_one(
    under_test: UnderTest, zone: DnsServer
) -> None:
    zone.records[FIRST] = [("v=spf1 -all",)]
    check = dkim_check(under_test.settings)
    assert check.status == "fail"
    assert f"the TXT record at {FIRST} is not a DKIM key record (v= must" in check.detail
    zone.records[FIRST].append(txt_strings(txt_record("mail", "x", under_test.key)))
    assert dkim_check(under_test.settings).status == "ok"


def test_no_record_warns_not_published_yet_with_the_record(
    under_test: UnderTest, zone: DnsServer
) -> None:
    line = txt_record("mail", "news.example.org", under_test.key)
    nothing: list[Sequence[str]] = []
    for records in ({}, {FIRST: nothing}):  # NXDOMAIN, then the name without a TXT record
        zone.records = {k: v for k, v in zone.records.items() if k != FIRST} | records
        check = dkim_check(under_test.settings)
        assert check.status == "warn"
        assert f"{FIRST} is not published yet (no TXT record): publish {line}" in check.detail
        assert check.fix == f"publish {line}"


def test_a_failing_dns_server_warns_could_not_look_up(
    under_test: UnderTest, zone: DnsServer
) -> None:
    zone.rcodes[FIRST] = dns.rcode.SERVFAIL
    check = dkim_check(under_test.settings)
    assert check.status == "warn"
    assert f"could not look up {FIRST} (the DNS server failed" in check.detail
    assert f"publish {txt_record('mail', 'news.example.org', under_test.key)}" in check.detail
    assert "dkim.nameserver" in check.fix


def test_a_silent_dns_server_warns_within_the_lookup_lifetime(
    under_test: UnderTest, zone: DnsServer
) -> None:
    _publish(zone, "mail", under_test.key)
    zone.silent = True
    check = dkim_check(under_test.settings, lifetime=0.2)
    assert check.status == "warn"
    assert f"could not look up {FIRST} (no answer within 0.2 s)" in check.detail


def test_each_key_is_reported_and_the_worst_wins(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    first = ed25519_key_file(tmp_path / "ed.pem")
    second = rsa_key_file(tmp_path / "rsa.pem")
    both = _with_key(
        settings,
        tmp_path / "ed.pem",
        zone,
        domain="example.org",
        selector="ed1",
        second_selector="rsa1",
        second_private_key_path=str(tmp_path / "rsa.pem"),
    )
    check = dkim_check(both)
    assert check.status == "warn"
    assert "ed1._domainkey.example.org is not published yet" in check.detail
    assert "rsa1._domainkey.example.org is not published yet" in check.detail
    _publish(zone, "ed1", first, "example.org")
    _publish(zone, "rsa1", second, "example.org")
    check = dkim_check(both)
    assert check.status == "ok"
    assert check.detail == (
        "2 key(s) readable; ed1._domainkey.example.org published and matching; "
        "rsa1._domainkey.example.org published and matching"
    )
    _publish(zone, "rsa1", first, "example.org")  # the Ed25519 key's record at the RSA name
    check = dkim_check(both)
    assert check.status == "fail"
    assert "ed1._domainkey.example.org published and matching" in check.detail
    assert "holds a k=ed25519 key but dkim.second_private_key_path" in check.detail


def test_an_ed25519_key_matches_its_record(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    key = ed25519_key_file(tmp_path / "dkim.pem")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    expected = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    assert dns_record(key) == expected
    zone.records[FIRST] = [(expected,)]
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone))
    assert check.status == "ok"


def test_the_record_is_looked_up_at_dkim_domain_when_set(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone, domain="example.org"))
    assert "publish mail._domainkey.example.org TXT" in check.detail
    assert zone.queries == ["mail._domainkey.example.org"]


def test_an_rsa_record_is_the_public_key_info_in_255_byte_strings(tmp_path: Path) -> None:
    key = rsa_key_file(tmp_path / "dkim.pem")
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    published = txt_record("mail", "news.example.org", key)
    assert published.startswith(f'{FIRST} TXT "v=DKIM1; k=rsa; p=')
    assert "".join(txt_strings(published)) == record
    assert all(len(string) <= 255 for string in txt_strings(published))


def test_a_broken_second_key_fails_before_any_lookup(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    ed25519_key_file(tmp_path / "ed.pem")
    (tmp_path / "rsa.pem").write_text("not a key\n", encoding="utf-8")
    both = _with_key(
        settings,
        tmp_path / "ed.pem",
        zone,
        second_selector="rsa1",
        second_private_key_path=str(tmp_path / "rsa.pem"),
    )
    check = dkim_check(both)
    assert check.status == "fail"
    assert "dkim.second_private_key_path" in check.detail
    assert zone.queries == []


def test_a_short_rsa_key_fails_as_too_weak(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    rsa_key_file(tmp_path / "dkim.pem", bits=1024)
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone))
    assert check.status == "fail"
    assert "1024-bit RSA key: too weak" in check.detail
    assert "digest dkim keygen" in check.fix


def test_a_key_of_the_wrong_algorithm_fails(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    ed25519_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone, algorithm="rsa"))
    assert check.status == "fail"
    assert "is an ed25519 key" in check.detail


def test_a_missing_key_file_fails(settings: Settings, tmp_path: Path, zone: DnsServer) -> None:
    check = dkim_check(_with_key(settings, tmp_path / "absent.pem", zone))
    assert check.status == "fail"
    assert "cannot be read" in check.detail


def test_an_unreadable_key_path_fails(settings: Settings, tmp_path: Path, zone: DnsServer) -> None:
    # A folder where the key should be: unreadable as a file for every user, root too.
    (tmp_path / "dkim.pem").mkdir()
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone))
    assert check.status == "fail"
    assert "cannot be read" in check.detail
    assert "permissions" in check.fix


def test_a_file_that_is_not_a_key_fails(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    (tmp_path / "dkim.pem").write_text("not a key\n", encoding="utf-8")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone))
    assert check.status == "fail"
    assert "not an unencrypted PEM private key" in check.detail


def test_a_key_without_a_selector_fails(
    settings: Settings, tmp_path: Path, zone: DnsServer
) -> None:
    rsa_key_file(tmp_path / "dkim.pem")
    check = dkim_check(_with_key(settings, tmp_path / "dkim.pem", zone, selector=""))
    assert check.status == "fail"
    assert "dkim.selector" in check.fix


def test_no_key_warns_that_dkim_is_off(settings: Settings) -> None:
    check = dkim_check(settings)
    assert check.status == "warn"
    assert "DKIM is off" in check.detail
