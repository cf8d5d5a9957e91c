"""SendGrid's signed event webhook: ECDSA P-256 over timestamp + body with a generated key,
stale or tampered payloads refused, and SendGrid's sample batch mapped event by event."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.db.models import InboundKind
from digest.errors import ConfigError
from digest.inbound.esp.payload import Forbidden, Malformed, NotSigned
from digest.inbound.esp.sendgrid import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SendGridVerifier,
    public_key,
    sendgrid_verdicts,
)
from tests.helpers.esp import JSON, SENDGRID_BATCH, SendGridKey, json_like

KEY = SendGridKey()
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
STAMP = int(NOW.timestamp())
RAW = json.dumps(SENDGRID_BATCH).encode()


def verifier(max_age: float = 300) -> SendGridVerifier:
    return SendGridVerifier(public_key(KEY.public), max_age)


def test_the_signed_sample_batch_verifies() -> None:
    headers = KEY.headers(RAW, STAMP)
    verifier().verify(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], RAW, NOW)


def test_a_pem_key_is_accepted_too() -> None:
    pem = KEY.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key(pem.decode()).public_numbers() == public_key(KEY.public).public_numbers()


@pytest.mark.parametrize(
    ("signature", "stamp", "body", "now", "refusal"),
    [
        (None, str(STAMP), RAW, NOW, NotSigned),
        ("sig", None, RAW, NOW, NotSigned),
        ("ok", str(STAMP), RAW + b" ", NOW, Forbidden),  # body changed after signing
        ("ok", str(STAMP + 1), RAW, NOW, Forbidden),  # timestamp changed after signing
        ("ok", str(STAMP), RAW, NOW + timedelta(seconds=301), Forbidden),  # stale
        ("ok", str(STAMP), RAW, NOW - timedelta(seconds=301), Forbidden),  # from the future
        ("ok", "12ab", RAW, NOW, Forbidden),
        ("!!", str(STAMP), RAW, NOW, Forbidden),
        (base64.b64encode(b"\x30\x00").decode(), str(STAMP), RAW, NOW, Forbidden),
    ],
)
def test_unsigned_stale_and_tampered_payloads_are_refused(
    signature: str | None, stamp: str | None, body: bytes, now: datetime, refusal: type[Exception]
) -> None:
    if signature == "ok":
        signature = KEY.headers(RAW, STAMP)[SIGNATURE_HEADER]
    with pytest.raises(refusal):
        verifier().verify(signature, stamp, body, now)


def test_a_signature_by_another_key_is_refused() -> None:
    headers = SendGridKey().headers(RAW, STAMP)
    with pytest.raises(Forbidden):
        verifier().verify(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], RAW, NOW)


@pytest.mark.parametrize("setting", ["", "not base64!", base64.b64encode(b"junk").decode()])
def test_a_key_that_is_not_one_is_a_config_error(setting: str) -> None:
    with pytest.raises(ConfigError):
        public_key(setting)


def test_a_key_on_another_curve_is_a_config_error() -> None:
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ConfigError, match="P-256"):
        public_key(base64.b64encode(der).decode())


def test_the_sample_batch_maps_event_by_event() -> None:
    verdicts = sendgrid_verdicts(RAW)
    assert [(v.external_id, v.kind) for v in verdicts] == [
        ("sendgrid:sg_event_id_deferred", InboundKind.DELAYED),
        ("sendgrid:sg_event_id_bounce", InboundKind.HARD_BOUNCE),
        ("sendgrid:sg_event_id_dropped", InboundKind.UNKNOWN),
        ("sendgrid:sg_event_id_spamreport", InboundKind.COMPLAINT),
        ("sendgrid:sg_event_id_unsubscribe", InboundKind.UNSUBSCRIBE),
        ("sendgrid:sg_event_id_group_unsubscribe", InboundKind.UNSUBSCRIBE),
    ]  # processed, delivered, open, click, group_resubscribe: not recorded
    deferred, bounce, dropped = verdicts[:3]
    assert deferred.diagnostic == "400 try again later"
    assert (bounce.status, bounce.smtp_code, bounce.diagnostic) == (
        "5.0.0",
        500,
        "500 unknown recipient",
    )
    assert "dropped" in dropped.reason and "Bounced Address" in dropped.reason
    assert {v.address for v in verdicts} == {"example@test.com"}
    assert {v.original_message_id for v in verdicts} == {"14c5d75ce93.dfd.64b469@ismtpd-555"}
    assert bounce.occurred_at == datetime.fromtimestamp(1513299569, UTC)


def test_blocked_is_a_soft_bounce_and_new_events_unknown() -> None:
    batch = [
        {**SENDGRID_BATCH[5], "type": "blocked"},
        {"event": "machine_opened", "email": "a@b.org"},
        "not an event",
    ]
    blocked, new, junk = sendgrid_verdicts(json.dumps(batch).encode())
    assert blocked.kind == InboundKind.SOFT_BOUNCE
    assert new.kind == InboundKind.UNKNOWN and "machine_opened" in new.reason
    assert junk.kind == InboundKind.UNKNOWN and junk.external_id is None


@pytest.mark.parametrize("body", [b"{}", b"nope", b'{"event": "bounce"}'])
def test_a_payload_that_is_not_a_batch_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        sendgrid_verdicts(body)


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(st.sampled_from(SENDGRID_BATCH).flatmap(json_like) | JSON, max_size=5))
def test_any_batch_shape_reads_without_crashing(batch: list[Any]) -> None:
    for verdict in sendgrid_verdicts(json.dumps(batch).encode()):
        assert len(verdict.address) <= 320 and len(verdict.reason) <= 300
