"""doctor's sender domain alignment: From, DKIM d= and Return-Path domains."""

from __future__ import annotations

import pytest

from digest.config import Settings
from digest.doctor.alignment import alignment_check, envelope_sender, organisational_domain
from tests.helpers.doctor import tweak


@pytest.mark.parametrize(
    ("domain", "organisational"),
    [
        ("example.org", "example.org"),
        ("news.example.org", "example.org"),
        ("a.b.news.example.org", "example.org"),
        ("mail.example.com.sa", "example.com.sa"),
        ("news.example.co.uk", "example.co.uk"),
        ("bounces.example.ac.jp", "example.ac.jp"),
        ("NEWS.Example.ORG.", "example.org"),
    ],
)
def test_the_organisational_domain_rule(domain: str, organisational: str) -> None:
    assert organisational_domain(domain) == organisational


def _domains(settings: Settings, sender: str, dkim: str, bounce: str) -> Settings:
    return tweak(
        settings,
        sender={"from_address": sender},
        dkim={"domain": dkim, "selector": "mail", "private_key_path": "/etc/digest/dkim.pem"},
        inbound={"domain": bounce},
    )


def test_one_domain_everywhere_is_ok(settings: Settings) -> None:
    check = alignment_check(_domains(settings, "digest@news.example.org", "", ""))
    assert check.status == "ok"
    assert "the same domain" in check.detail


def test_subdomains_of_one_organisational_domain_are_ok(settings: Settings) -> None:
    changed = _domains(settings, "digest@news.example.org", "example.org", "bounces.example.org")
    check = alignment_check(changed)
    assert check.status == "ok"
    assert "one organisational domain (example.org)" in check.detail
    assert envelope_sender(changed) == "b-doctor@bounces.example.org"


def test_a_return_path_elsewhere_warns(settings: Settings) -> None:
    check = alignment_check(_domains(settings, "digest@example.org", "", "bounces.other.net"))
    assert check.status == "warn"
    assert "DKIM alone" in check.detail
    assert "inbound.domain" in check.fix


def test_dkim_elsewhere_warns(settings: Settings) -> None:
    check = alignment_check(_domains(settings, "digest@example.org", "esp.example.net", ""))
    assert check.status == "warn"
    assert "only the Return-Path aligns" in check.detail


def test_no_dkim_rests_on_spf_and_warns(settings: Settings) -> None:
    check = alignment_check(tweak(settings, sender={"from_address": "digest@example.org"}))
    assert check.status == "warn"
    assert "(no DKIM)" in check.detail


def test_nothing_aligned_fails(settings: Settings) -> None:
    changed = _domains(settings, "digest@example.org", "esp.example.net", "bounces.other.net")
    check = alignment_check(changed)
    assert check.status == "fail"
    assert "DMARC fails" in check.detail
