"""Postmark: HTTP Basic credentials checked in constant time; Postmark's sample Bounce,
SpamComplaint and SubscriptionChange records mapped by its bounce type table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings

from digest.db.models import InboundKind
from digest.inbound.esp.payload import Malformed, NotSigned
from digest.inbound.esp.postmark import check_credentials, postmark_verdicts
from tests.helpers.esp import (
    POSTMARK_BOUNCE,
    POSTMARK_SPAM,
    POSTMARK_SUBSCRIPTION,
    basic,
    json_like,
)


def read(record: dict[str, Any]) -> list[Any]:
    return postmark_verdicts(json.dumps(record).encode())


def test_the_right_credentials_pass() -> None:
    check_credentials(
        basic("hook", "s3cret:with:colons")["Authorization"], "hook", "s3cret:with:colons"
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic",
        "Basic !!!",
        basic("hook", "wrong")["Authorization"],
        basic("other", "s3cret")["Authorization"],
        basic("hook", "s3cret ")["Authorization"],
        "Basic " + "aG9vaw==",  # "hook", no colon
    ],
)
def test_missing_or_wrong_credentials_are_refused(header: str | None) -> None:
    with pytest.raises(NotSigned):
        check_credentials(header, "hook", "s3cret")


def test_the_documented_hard_bounce() -> None:
    [verdict] = read(POSTMARK_BOUNCE)
    assert verdict.kind == InboundKind.HARD_BOUNCE
    assert verdict.address == "john@example.com"
    assert verdict.diagnostic == "Test bounce details"
    assert verdict.original_message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert verdict.external_id == "postmark:4323372036854775807"
    assert verdict.occurred_at == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bounce_type", "kind"),
    [
        ("HardBounce", InboundKind.HARD_BOUNCE),
        ("BadEmailAddress", InboundKind.HARD_BOUNCE),
        ("SoftBounce", InboundKind.SOFT_BOUNCE),
        ("Transient", InboundKind.SOFT_BOUNCE),
        ("DnsError", InboundKind.SOFT_BOUNCE),
        ("SpamNotification", InboundKind.SOFT_BOUNCE),
        ("Blocked", InboundKind.SOFT_BOUNCE),
        ("AutoResponder", InboundKind.AUTO_REPLY),
        ("ChallengeVerification", InboundKind.CHALLENGE),
        ("Unsubscribe", InboundKind.UNSUBSCRIBE),
        ("VirusNotification", InboundKind.UNKNOWN),
        ("ManuallyDeactivated", InboundKind.UNKNOWN),
        ("Unknown", InboundKind.UNKNOWN),
    ],
)
def test_the_bounce_type_table(bounce_type: str, kind: InboundKind) -> None:
    [verdict] = read({**POSTMARK_BOUNCE, "Type": bounce_type, "Details": "550 5.1.1 no such user"})
    assert verdict.kind == kind
    assert (verdict.smtp_code, verdict.status) == (550, "5.1.1")
    if kind == InboundKind.UNKNOWN:
        assert "is not mapped" in verdict.reason


def test_the_documented_spam_complaint() -> None:
    [verdict] = read(POSTMARK_SPAM)
    assert (verdict.kind, verdict.address) == (InboundKind.COMPLAINT, "john@example.com")
    assert verdict.external_id == "postmark:42"


def test_a_readers_own_suppression_is_an_unsubscribe() -> None:
    [verdict] = read(POSTMARK_SUBSCRIPTION)
    assert verdict.kind == InboundKind.UNSUBSCRIBE
    assert verdict.address == "bounced-address@wildbit.com"
    assert verdict.external_id and verdict.external_id.startswith("postmark:change:")
    assert read(POSTMARK_SUBSCRIPTION)[0].external_id == verdict.external_id  # stable


@pytest.mark.parametrize(
    "changes",
    [
        {"SuppressionReason": "HardBounce"},  # its Bounce record counts
        {"SuppressionReason": "SpamComplaint"},
        {"SuppressSending": False},  # reactivated: only an editor lifts our suppression
    ],
)
def test_other_subscription_changes_are_ignored(changes: dict[str, Any]) -> None:
    assert read({**POSTMARK_SUBSCRIPTION, **changes}) == []


def test_deliveries_opens_and_clicks_are_ignored_and_new_records_unknown() -> None:
    assert read({**POSTMARK_BOUNCE, "RecordType": "Delivery"}) == []
    assert read({**POSTMARK_BOUNCE, "RecordType": "Open"}) == []
    [verdict] = read({**POSTMARK_BOUNCE, "RecordType": "SomethingNew"})
    assert verdict.kind == InboundKind.UNKNOWN and "SomethingNew" in verdict.reason


@pytest.mark.parametrize("body", [b"", b"nope", b"[1]", b"\x00\xff"])
def test_malformed_records(body: bytes) -> None:
    with pytest.raises(Malformed):
        postmark_verdicts(body)


def test_hostile_fields_are_cleaned_and_bounded() -> None:
    [verdict] = read(
        {**POSTMARK_BOUNCE, "Email": "a\u202e@x.org" + "x" * 999, "Details": "l1\nl2\x00" * 500}
    )
    assert "\u202e" not in verdict.address and len(verdict.address) <= 320
    assert "\n" not in verdict.diagnostic and "\x00" not in verdict.diagnostic
    assert len(verdict.diagnostic) <= 1000


@settings(max_examples=100, deadline=None)
@given(record=json_like(POSTMARK_BOUNCE) | json_like(POSTMARK_SUBSCRIPTION))
def test_any_record_shape_reads_without_crashing(record: dict[str, Any]) -> None:
    for verdict in read(record):
        assert len(verdict.address) <= 320 and len(verdict.reason) <= 300
