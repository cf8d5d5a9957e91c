"""Reader.read: one verdict per message, in the contract's order (envelope token, legacy
subject, DSN, ARF, auto-reply, flufl.bounce), over a corpus of real bounces and hostile input."""

from __future__ import annotations

import csv
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.config import Settings
from digest.db.models import InboundKind
from digest.inbound.classify import Reader
from digest.inbound.verdicts import Received, Source, Verdict
from digest.tracking.tokens import Purpose, Signer
from digest.tracking.verp import Verp, VerpKind, VerpRef
from tests.helpers.paths import ROOT

SECRET = "inbound-classifier-test-secret-0123456789"
DOMAIN = "bounces.example.org"
DATA = ROOT / "tests" / "data" / "inbound"
BOUNCES = DATA / "bounces"
VERP = Verp(SECRET, DOMAIN)
SIGNER = Signer(SECRET)
READER = Reader(VERP, SIGNER, 5, ("postmaster", "abuse"))


def read(raw: bytes, *envelope_to: str) -> Verdict:
    """The verdict, checked not to come from Reader.read's catch-all: that one is for bugs
    (an ERROR traceback per message), never for what a sender can put in a message."""
    verdict = READER.read(Received(raw, Source.SMTP, envelope_to=envelope_to))
    assert not verdict.reason.startswith("classifier failed"), verdict.reason
    return verdict


def _corpus() -> list[tuple[str, str, list[str]]]:
    with (BOUNCES / "expected.csv").open(encoding="utf-8") as handle:
        return [(r["file"], r["kind"], r["addresses"].split()) for r in csv.DictReader(handle)]


CORPUS = _corpus()


def test_the_corpus_covers_many_mtas() -> None:
    files = {name for name, _, _ in CORPUS}
    assert files == {path.name for path in BOUNCES.glob("*.txt")}
    for mta in ("postfix", "exim", "qmail", "microsoft", "groupwise", "yahoo", "aol", "dsn"):
        assert any(name.startswith(mta) for name in files), mta
    kinds = {kind for _, kind, _ in CORPUS}
    assert {"hard_bounce", "soft_bounce", "delayed", "unknown", "auto_reply"} <= kinds


@pytest.mark.parametrize(("name", "kind", "addresses"), CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_sample(name: str, kind: str, addresses: list[str]) -> None:
    verdict = read((BOUNCES / name).read_bytes(), f"postmaster@{DOMAIN}")
    assert verdict.kind is InboundKind(kind), verdict.reason
    named = [verdict.address, *verdict.also] if verdict.address else []
    assert set(addresses) <= set(named)
    if addresses:
        assert verdict.address in addresses
    assert verdict.reason


def test_a_dsn_keeps_status_code_and_diagnostic() -> None:
    verdict = read((BOUNCES / "dsn_14.txt").read_bytes())
    assert (verdict.status, verdict.smtp_code) == ("5.1.1", 550)
    assert "User unknown" in verdict.diagnostic
    assert verdict.reason.startswith("DSN (RFC 3464)")


def _digest_dsn(delivery_id: int, recipient: str, status: str = "5.1.1") -> bytes:
    token = VERP.token(VerpKind.BOUNCE, delivery_id)
    unsubscribe = VERP.token(VerpKind.UNSUBSCRIBE, delivery_id)
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {token}@{DOMAIN}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Return-Path: <{token}@{DOMAIN}>\r\nFrom: News <news@news.example.org>\r\n"
        f"To: {recipient}\r\nMessage-ID: <abc123@news.example.org>\r\n"
        "List-Id: Morning <morning.news.example.org>\r\n"
        f"List-Unsubscribe: <mailto:{unsubscribe}@{DOMAIN}?subject=unsubscribe>\r\n"
        "--B--\r\n"
    ).encode()


def test_envelope_b_token_names_the_delivery_and_the_content_the_kind() -> None:
    verdict = read(_digest_dsn(77, "reader@example.com"), VERP.address(VerpKind.BOUNCE, 77))
    assert verdict.kind is InboundKind.HARD_BOUNCE
    assert verdict.verp == VerpRef(VerpKind.BOUNCE, 77)
    assert verdict.address == "reader@example.com"
    assert verdict.original_message_id == "abc123@news.example.org"
    assert verdict.list_id == "morning.news.example.org"


def test_returned_headers_identify_the_delivery_without_the_envelope() -> None:
    verdict = read(_digest_dsn(91, "reader@example.com", "4.2.1"))
    assert verdict.kind is InboundKind.SOFT_BOUNCE
    assert verdict.verp is not None and verdict.verp.delivery_id == 91


def test_a_forged_envelope_token_is_not_trusted() -> None:
    forged = VERP.address(VerpKind.BOUNCE, 5).replace("b-5-", "b-6-")
    verdict = read(b"From: someone@example.net\r\nSubject: hello\r\n\r\nhi\r\n", forged)
    assert verdict.kind is InboundKind.UNKNOWN
    assert verdict.verp is None
    assert "envelope token refused" in verdict.reason


def test_mail_to_the_u_address_is_an_unsubscribe_from_the_sender() -> None:
    raw = b"From: Reader <Reader@Example.com>\r\nSubject: unsubscribe\r\n\r\n"
    verdict = read(raw, VERP.address(VerpKind.UNSUBSCRIBE, 12))
    assert verdict.kind is InboundKind.UNSUBSCRIBE
    assert verdict.address == "Reader@Example.com"
    assert verdict.verp == VerpRef(VerpKind.UNSUBSCRIBE, 12)


def test_u_address_with_unreadable_content_still_unsubscribes() -> None:
    verdict = read(b"", VERP.address(VerpKind.UNSUBSCRIBE, 12))
    assert verdict.kind is InboundKind.UNSUBSCRIBE
    assert verdict.verp == VerpRef(VerpKind.UNSUBSCRIBE, 12)


def test_u_token_in_the_headers_counts_when_no_envelope_was_seen() -> None:
    address = VERP.address(VerpKind.UNSUBSCRIBE, 40)
    raw = f"From: r@example.com\r\nTo: {address}\r\nSubject: unsubscribe\r\n\r\n".encode()
    assert READER.read(Received(raw, Source.IMAP)).kind is InboundKind.UNSUBSCRIBE
    assert read(raw, f"postmaster@{DOMAIN}").kind is not InboundKind.UNSUBSCRIBE


def test_legacy_unsubscribe_subject_needs_a_valid_signature() -> None:
    token = SIGNER.dumps(Purpose.UNSUBSCRIBE, 3, 4)
    raw = f"From: r@example.com\r\nSubject: unsubscribe {token}\r\n\r\n".encode()
    verdict = read(raw, "unsubscribe@news.example.org")
    assert verdict.kind is InboundKind.UNSUBSCRIBE
    assert verdict.unsubscribe_token == token
    assert verdict.address == "r@example.com"
    forged = raw.replace(token.encode(), token[:-2].encode() + b"xx")
    verdict = read(forged, "unsubscribe@news.example.org")
    assert verdict.kind is InboundKind.UNKNOWN
    assert not verdict.unsubscribe_token


def test_mail_to_abuse_is_read_by_content() -> None:
    raw = (DATA / "arf" / "rfc5965_b2.eml").read_bytes()
    verdict = read(raw, f"abuse@{DOMAIN}")
    assert verdict.kind is InboundKind.COMPLAINT
    assert verdict.address == "user@example.com"
    person = read(b"From: a@example.com\r\nSubject: Hi\r\n\r\nPlease stop.\r\n", f"abuse@{DOMAIN}")
    assert person.kind is InboundKind.UNKNOWN
    assert "abuse@" in person.reason


def test_from_settings_uses_the_bounce_domain_and_secret(settings: Settings) -> None:
    reader = Reader.from_settings(settings)
    assert reader.max_nesting == settings.inbound.max_nesting
    token = reader.verp.address(VerpKind.BOUNCE, 3)
    verdict = reader.read(Received(b"Subject: x\r\n\r\ny\r\n", Source.SMTP, envelope_to=(token,)))
    assert verdict.verp == VerpRef(VerpKind.BOUNCE, 3)


def _nested(levels: int) -> bytes:
    message = b"Subject: innermost\r\n\r\nbody\r\n"
    for level in range(levels):
        message = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % level + message
    return message


HOSTILE = {
    "empty": b"",
    "whitespace": b"\r\n\r\n   \r\n",
    "binary garbage": bytes(range(256)) * 40,
    "truncated MIME": _digest_dsn(5, "a@example.com")[:300],
    "bad boundary": b'Content-Type: multipart/report; boundary="X"\r\n\r\n--Y\r\nA: b\r\n',
    "8-bit junk headers": b"From: \xff\xfe\xc0 <\xe9@\xe9.com>\r\nSubject: =?x-nope?q?=E9?=\xe9\r\n"
    b"Content-Type: text/plain; charset=\xff\r\n\r\n\xff\xff\r\n",
    "nested ten deep": _nested(10),
    "huge header": b"Subject: " + b"A" * 2_000_000 + b"\r\n\r\nbody\r\n",
    "many parts": b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 5000,
    "no headers": b"just a line of text with no header at all",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_unknown_with_a_reason(name: str) -> None:
    verdict = read(HOSTILE[name])
    assert verdict.kind in (InboundKind.UNKNOWN,), (name, verdict)
    assert verdict.reason


def test_nesting_within_the_limit_is_read() -> None:
    assert "nested" not in read(_nested(4)).reason
    assert "nested deeper than 5" in read(_nested(6)).reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    verdict = read(raw)
    assert isinstance(verdict.kind, InboundKind)
    assert verdict.kind is not InboundKind.UNSUBSCRIBE


SAMPLES = sorted(BOUNCES.glob("*.txt"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SAMPLES) - 1), st.randoms(use_true_random=False), st.integers(1, 30))
def test_mutated_real_samples_never_raise(index: int, rng: random.Random, edits: int) -> None:
    data = bytearray(SAMPLES[index].read_bytes())
    for _ in range(edits):
        at = rng.randrange(len(data) + 1)
        choice = rng.random()
        if choice < 0.4 and at < len(data):
            data[at] = rng.randrange(256)
        elif choice < 0.7:
            del data[at : at + rng.randrange(1, 200)]
        else:
            data[at:at] = rng.choice([b"\r\n\r\n", b"--", b"Content-Type: message/rfc822\r\n"])
    verdict = read(bytes(data))
    assert verdict.reason


def test_a_bug_in_a_reader_part_is_unknown_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr("digest.inbound.classify.read_dsn", boom)
    verdict = READER.read(Received(b"Subject: x\r\n\r\ny\r\n", Source.SMTP))
    assert verdict.kind is InboundKind.UNKNOWN
    assert "RuntimeError" in verdict.reason


def test_auto_replies_and_challenges_never_come_out_as_bounces() -> None:
    from tests.digest.inbound.test_autoreply import AUTOMATIC

    for name, (raw, kind) in AUTOMATIC.items():
        verdict = read(raw, VERP.address(VerpKind.BOUNCE, 8))
        assert verdict.kind is kind, (name, verdict.reason)
        assert verdict.verp == VerpRef(VerpKind.BOUNCE, 8)


def _report(block: str, content_type: str = "message/delivery-status") -> bytes:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nSubject: Delivery Status Notification\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; "
        'boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nDelayed.\r\n'
        f"--B\r\nContent-Type: {content_type}\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"{block}\r\n--B--\r\n"
    ).encode()


@pytest.mark.parametrize("action", ["delayed", "failed"])
def test_a_report_naming_no_address_is_unknown_without_an_error(
    action: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Our DSN reader drops a recipient without "@"; flufl.bounce's DSN detector still
    # returns it, and no address of it is usable: the next detector, then UNKNOWN.
    raw = _report(f"Final-Recipient: rfc822; nobody\r\nAction: {action}\r\nStatus: 4.4.7\r\n")
    with caplog.at_level("DEBUG"):
        verdict = read(raw, VERP.address(VerpKind.BOUNCE, 12))
    assert verdict.kind is InboundKind.UNKNOWN
    assert verdict.verp == VerpRef(VerpKind.BOUNCE, 12)
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text


_FIELD_VALUE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "Final-Recipient",
                    "Original-Recipient",
                    "X-Actual-Recipient",
                    "Action",
                    "Status",
                    "Diagnostic-Code",
                    "Reporting-MTA",
                    "Feedback-Type",
                    "Ok",
                ]
            ),
            st.one_of(
                _FIELD_VALUE,
                st.sampled_from(
                    [
                        "rfc822; nobody",
                        "rfc822;",
                        "rfc822; <>",
                        "rfc822; @",
                        "delayed",
                        "failed",
                        "5.1.1",
                        "smtp; 550",
                        "; ",
                        "",
                    ]
                ),
            ),
        ),
        max_size=8,
    ),
    st.sampled_from(
        ["message/delivery-status", "message/global-delivery-status", "message/feedback-report"]
    ),
    st.booleans(),
)
def test_reports_with_any_fields_never_reach_the_catch_all(
    fields: list[tuple[str, str]], content_type: str, blank_between: bool
) -> None:
    sep = "\r\n\r\n" if blank_between else "\r\n"
    block = sep.join(f"{name}: {value}" for name, value in fields) + "\r\n"
    verdict = read(_report(block, content_type), VERP.address(VerpKind.BOUNCE, 3))
    assert verdict.reason


@pytest.mark.parametrize("value", [">x@example.org<", "a>b<c", "<", ">", "<>", "><"])
def test_bracket_soup_in_message_ids_is_read_without_an_error(value: str) -> None:
    auto = (
        f"From: a@example.com\r\nAuto-Submitted: auto-replied\r\nIn-Reply-To: {value}\r\n\r\nx\r\n"
    )
    assert read(auto.encode()).kind is InboundKind.AUTO_REPLY
    dsn = _digest_dsn(4, "reader@example.com").replace(
        b"Message-ID: <abc123@news.example.org>", f"Message-ID: {value}".encode()
    )
    assert read(dsn).kind is InboundKind.HARD_BOUNCE
