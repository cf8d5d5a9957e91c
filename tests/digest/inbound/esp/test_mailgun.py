"""Mailgun: HMAC-SHA256 of timestamp + token with the signing key, freshness, a token never
used for another payload; Mailgun's sample events mapped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings

from digest.db.models import InboundKind
from digest.inbound.esp.mailgun import MailgunVerifier, TokenMemory, mailgun_verdicts
from digest.inbound.esp.payload import Forbidden, NotSigned
from tests.helpers.esp import JSON, MAILGUN_FAILED, MAILGUN_KEY, json_like, mailgun_body

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
STAMP = int(NOW.timestamp())
TOKEN = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"


def check(verifier: MailgunVerifier, raw: bytes, now: datetime = NOW) -> None:
    verifier.verify(json.loads(raw), raw, now)


def test_the_signed_sample_verifies_and_is_a_hard_bounce() -> None:
    raw = mailgun_body(MAILGUN_FAILED, timestamp=STAMP, token=TOKEN)
    check(MailgunVerifier(MAILGUN_KEY, 300), raw)
    [verdict] = mailgun_verdicts(json.loads(raw))
    assert verdict.kind == InboundKind.HARD_BOUNCE
    assert verdict.address == "alice@example.com"
    assert verdict.smtp_code is None  # 605 is Mailgun's own code, not SMTP's
    assert verdict.diagnostic == "Not delivering to previously bounced address"
    assert verdict.original_message_id == "20130503182626.18666.16540@sandbox.mailgun.org"
    assert verdict.external_id == "mailgun:G9Bn5sl1TC6nu79C8C0bwg"
    assert "suppress-bounce" in verdict.reason


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"severity": "temporary"}, InboundKind.SOFT_BOUNCE),
        ({"event": "complained"}, InboundKind.COMPLAINT),
        ({"event": "unsubscribed"}, InboundKind.UNSUBSCRIBE),
        ({"event": "something-new"}, InboundKind.UNKNOWN),
    ],
)
def test_events(changes: dict[str, Any], kind: InboundKind) -> None:
    [verdict] = mailgun_verdicts({"event-data": {**MAILGUN_FAILED, **changes}})
    assert verdict.kind == kind


def test_smtp_code_and_status_from_the_delivery_status() -> None:
    status = {"code": 550, "message": "5.1.1 The email account does not exist", "description": ""}
    [verdict] = mailgun_verdicts({"event-data": {**MAILGUN_FAILED, "delivery-status": status}})
    assert (verdict.smtp_code, verdict.status) == (550, "5.1.1")
    assert verdict.diagnostic == "5.1.1 The email account does not exist"


@pytest.mark.parametrize("event", ["delivered", "opened", "clicked", "accepted"])
def test_events_about_sending_are_ignored(event: str) -> None:
    assert mailgun_verdicts({"event-data": {**MAILGUN_FAILED, "event": event}}) == []


def test_unsigned_bad_and_stale_signatures_are_refused() -> None:
    verifier = MailgunVerifier(MAILGUN_KEY, 300)
    unsigned = json.dumps({"event-data": MAILGUN_FAILED}).encode()
    with pytest.raises(NotSigned):
        check(verifier, unsigned)
    wrong_key = mailgun_body(MAILGUN_FAILED, timestamp=STAMP, token=TOKEN, key="key-other")
    with pytest.raises(Forbidden, match="does not verify"):
        check(verifier, wrong_key)
    stale = mailgun_body(MAILGUN_FAILED, timestamp=STAMP - 301, token="t-old")
    with pytest.raises(Forbidden, match="stale"):
        check(verifier, stale)
    signed = json.loads(mailgun_body(MAILGUN_FAILED, timestamp=STAMP, token=TOKEN))
    signed["signature"]["timestamp"] = str(STAMP + 1)  # changed after signing
    with pytest.raises(Forbidden, match="does not verify"):
        check(verifier, json.dumps(signed).encode())


def test_a_token_is_never_used_for_another_payload() -> None:
    verifier = MailgunVerifier(MAILGUN_KEY, 300)
    raw = mailgun_body(MAILGUN_FAILED, timestamp=STAMP, token=TOKEN)
    check(verifier, raw)
    check(verifier, raw, NOW + timedelta(seconds=10))  # the provider's retry: same body
    # The signature covers timestamp and token only: the same signature on another event.
    forged = json.loads(raw)
    forged["event-data"] = {**MAILGUN_FAILED, "recipient": "victim@example.org"}
    with pytest.raises(Forbidden, match="replayed"):
        check(verifier, json.dumps(forged).encode())


def test_the_token_memory_forgets_past_the_window_and_stays_bounded() -> None:
    memory = TokenMemory(300, limit=100)
    memory.check("a", 0.0, "d1", 0.0)
    memory.check("b", 1000.0, "d2", 1000.0)  # a sweep: "a" is older than twice the window
    memory.check("a", 1000.0, "d3", 1000.0)  # forgotten, so no longer a replay
    for i in range(500):
        memory.check(f"t{i}", 1000.0, "d", 1000.0)
    assert len(memory) <= 100


@settings(max_examples=100, deadline=None)
@given(event=json_like(MAILGUN_FAILED) | JSON)
def test_any_event_shape_reads_without_crashing(event: Any) -> None:
    for verdict in mailgun_verdicts({"event-data": event}):
        assert len(verdict.address) <= 320 and len(verdict.reason) <= 300
