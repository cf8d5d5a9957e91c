"""Feedback reports: RFC 5965's own example, Microsoft JMRP and a Yahoo/AOL-style report
with the recipient redacted; not-spam and authentication-failure reports are not complaints."""

from __future__ import annotations

from digest.db.models import InboundKind
from digest.inbound.arf import read_complaint
from digest.inbound.classify import Reader
from digest.inbound.message import parse
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.tokens import Signer
from digest.tracking.verp import Verp, VerpKind
from tests.helpers.paths import ROOT

ARF = ROOT / "tests" / "data" / "inbound" / "arf"
SECRET = "inbound-arf-test-secret-0123456789abcdef"
VERP = Verp(SECRET, "bounces.example.org")
READER = Reader(VERP, Signer(SECRET), 5, ("abuse",))


def _read(name: str, raw: bytes | None = None) -> Verdict:
    raw = raw if raw is not None else (ARF / name).read_bytes()
    return READER.read(Received(raw, Source.FILE))


def test_rfc5965_example_names_the_original_recipient() -> None:
    verdict = _read("rfc5965_b2.eml")
    assert verdict.kind is InboundKind.COMPLAINT
    assert verdict.address == "user@example.com"
    assert verdict.original_message_id == "8787KJKJ3K4J3K4J3K4J3.mail@example.net"
    assert "Feedback-Type abuse" in verdict.reason


def test_microsoft_jmrp_names_the_hotmail_recipient() -> None:
    verdict = _read("jmrp.eml")
    assert verdict.kind is InboundKind.COMPLAINT
    assert verdict.address == "reader.one@hotmail.com"
    assert verdict.original_message_id == "9a1f0c2e44b74b0c9a51d1f0a2b3c4d5@news.example.org"
    assert verdict.list_id == "morning.news.example.org"
    assert verdict.verp is None  # the sample's token is not signed with our key
    assert "JMRP" in verdict.reason


def test_yahoo_style_report_skips_the_redacted_to_for_x_original_to() -> None:
    verdict = _read("yahoo_aol.eml")
    assert verdict.kind is InboundKind.COMPLAINT
    assert verdict.address == "reader.two@yahoo.com"
    assert "redacted" not in " ".join(verdict.also)


def test_a_redacted_report_is_identified_by_our_token() -> None:
    raw = (ARF / "yahoo_aol.eml").read_bytes()
    token = VERP.token(VerpKind.BOUNCE, 321).encode()
    raw = raw.replace(b"b-2t-7hyxrq3xutmse", token).replace(b"X-Original-To: reader.two@", b"X-O: ")
    verdict = _read("", raw)
    assert verdict.kind is InboundKind.COMPLAINT
    assert verdict.address == ""
    assert verdict.verp is not None and verdict.verp.delivery_id == 321


def test_not_spam_and_auth_failure_reports_are_not_complaints() -> None:
    base = (ARF / "rfc5965_b2.eml").read_bytes()
    for kind in (b"not-spam", b"auth-failure"):
        verdict = _read("", base.replace(b"Feedback-Type: abuse", b"Feedback-Type: " + kind))
        assert verdict.kind is InboundKind.UNKNOWN
        assert kind.decode() in verdict.reason


def test_plain_mail_is_no_complaint() -> None:
    assert read_complaint(parse(b"Subject: hi\r\n\r\nhello\r\n", max_nesting=5)) is None
