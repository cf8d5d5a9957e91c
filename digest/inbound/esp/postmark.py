"""Postmark's webhooks: HTTP Basic credentials (the webhook URL's user and password), then
one record per POST: Bounce (by Postmark's bounce type), SpamComplaint, SubscriptionChange."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from digest.db.models import InboundKind
from digest.inbound.esp.payload import (
    ID_CHARS,
    NotSigned,
    address,
    external_id,
    iso_time,
    load_object,
    message_id,
    reason,
    text,
)
from digest.inbound.replies import smtp_code_of, status_of
from digest.inbound.verdicts import Verdict

SOURCE = "postmark"
# Postmark's bounce types (its Bounce API's table) as our kinds; a type not here is unknown.
BOUNCE_KINDS: dict[str, InboundKind] = {
    "HardBounce": InboundKind.HARD_BOUNCE,
    "BadEmailAddress": InboundKind.HARD_BOUNCE,
    "Transient": InboundKind.SOFT_BOUNCE,
    "SoftBounce": InboundKind.SOFT_BOUNCE,
    "DnsError": InboundKind.SOFT_BOUNCE,
    # Delivered but refused as spam or blocked by the receiving system: not the reader's
    # complaint, and it may pass another day, so counted like a soft bounce.
    "SpamNotification": InboundKind.SOFT_BOUNCE,
    "Blocked": InboundKind.SOFT_BOUNCE,
    "SpamComplaint": InboundKind.COMPLAINT,
    "Unsubscribe": InboundKind.UNSUBSCRIBE,
    "AutoResponder": InboundKind.AUTO_REPLY,
    "ChallengeVerification": InboundKind.CHALLENGE,
}
IGNORED = frozenset({"Delivery", "Open", "Click", "Inbound"})


def check_credentials(authorization: str | None, user: str, password: str) -> None:
    """NotSigned unless `authorization` is HTTP Basic with exactly `user` and `password`
    (compared in constant time, both always)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise NotSigned("no Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise NotSigned("Basic credentials are not base64") from None
    given_user, colon, given_password = decoded.partition(b":")
    same_user = hmac.compare_digest(given_user, user.encode("utf-8"))
    same_password = hmac.compare_digest(given_password, password.encode("utf-8"))
    if not (colon and same_user and same_password):
        raise NotSigned("wrong Basic credentials")


def postmark_verdicts(raw: bytes) -> list[Verdict]:
    """The verdict of one Postmark webhook record ([] for records we do not record)."""
    record = load_object(raw)
    record_type = text(record, "RecordType", 40)
    if record_type in IGNORED:
        return []
    if record_type in ("Bounce", "SpamComplaint"):
        return [_bounce(record, record_type)]
    if record_type == "SubscriptionChange":
        return _subscription_change(record)
    return [
        Verdict(
            InboundKind.UNKNOWN,
            address=address(record, "Email") or address(record, "Recipient"),
            original_message_id=message_id(text(record, "MessageID")),
            reason=reason(f"Postmark record {record_type or '(none)'!r} is not mapped"),
            external_id=external_id(SOURCE, text(record, "ID", ID_CHARS)),
        )
    ]


def _bounce(record: dict[str, Any], record_type: str) -> Verdict:
    bounce_type = text(record, "Type", 40) or record_type
    kind = BOUNCE_KINDS.get(bounce_type, InboundKind.UNKNOWN)
    details = text(record, "Details")
    why = (
        f"Postmark {bounce_type}"
        if kind != InboundKind.UNKNOWN
        else (f"Postmark bounce type {bounce_type!r} is not mapped")
    )
    return Verdict(
        kind,
        address=address(record, "Email"),
        status=status_of(details),
        smtp_code=smtp_code_of(details),
        diagnostic=details or text(record, "Description"),
        original_message_id=message_id(text(record, "MessageID")),
        reason=reason(why),
        external_id=external_id(SOURCE, text(record, "ID", ID_CHARS)),
        occurred_at=iso_time(text(record, "BouncedAt", 40)),
    )


def _subscription_change(record: dict[str, Any]) -> list[Verdict]:
    """A reader's own suppression (ManualSuppression: Postmark's unsubscribe link) is an
    unsubscribe. Suppressions for a hard bounce or a complaint are ignored (their Bounce and
    SpamComplaint records already count), as are reactivations (only an editor lifts ours)."""
    why = text(record, "SuppressionReason", 40)
    if record.get("SuppressSending") is not True or why != "ManualSuppression":
        return []
    recipient = address(record, "Recipient")
    changed = text(record, "ChangedAt", 40)
    # A change has no id of its own: the message, recipient and time name it.
    event = f"change:{text(record, 'MessageID', 80)}:{recipient}:{changed}"
    return [
        Verdict(
            InboundKind.UNSUBSCRIBE,
            address=recipient,
            original_message_id=message_id(text(record, "MessageID")),
            reason=reason("Postmark subscription change:", why, text(record, "Origin", 40)),
            external_id=external_id(SOURCE, event),
            occurred_at=iso_time(changed),
        )
    ]
