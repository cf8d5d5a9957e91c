"""Amazon SES through SNS: a genuine SNS message (sns.py) for a configured topic; subscription
confirmed by fetching its SubscribeURL; bounces, complaints and delays mapped to verdicts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from digest.db.models import InboundKind
from digest.inbound.esp.payload import (
    ID_CHARS,
    Malformed,
    Upstream,
    address,
    external_id,
    iso_time,
    items,
    load_object,
    message_id,
    obj,
    reason,
    text,
)
from digest.inbound.esp.sns import (
    SIGNED_FIELDS,
    Fetch,
    FetchFailed,
    SnsVerifier,
    fetch_https,
    sns_url,
)
from digest.inbound.replies import smtp_code_of, status_of
from digest.inbound.verdicts import Verdict

SOURCE = "ses"
# SES events that say nothing about the recipient's address: acknowledged, not recorded.
IGNORED = frozenset({"Delivery", "Send", "Open", "Click", "Reject", "Rendering Failure"})
_BOUNCE_KINDS = {"Permanent": InboundKind.HARD_BOUNCE}  # Transient, Undetermined: soft


class SesWebhook:
    """`/esp/ses`: verify, confirm a subscription, read the SES notification."""

    def __init__(self, topic_arns: Sequence[str], fetch: Fetch | None = None) -> None:
        self._fetch = fetch or fetch_https
        self.verifier = SnsVerifier(topic_arns, self._fetch)
        self.confirmed: list[str] = []  # topics whose subscription this process confirmed

    def handle(self, raw: bytes) -> list[Verdict]:
        """The verdicts of one SNS POST (none for confirmations and ignored events).
        Malformed / NotSigned / Forbidden / Upstream (payload.py) when refused."""
        message = load_object(raw)
        if message.get("Type") not in SIGNED_FIELDS:
            raise Malformed("not an SNS message")
        self.verifier.verify(message)
        kind = message["Type"]
        if kind == "SubscriptionConfirmation":
            self._confirm(message)
            return []
        if kind == "UnsubscribeConfirmation":
            return []
        return ses_verdicts(message)

    def _confirm(self, message: dict[str, Any]) -> None:
        url = sns_url(str(message.get("SubscribeURL")), certificate=False)
        try:
            self._fetch(url)
        except FetchFailed as exc:
            raise Upstream(f"SNS subscription not confirmed: {exc}") from None
        self.confirmed.append(str(message["TopicArn"]))


def ses_verdicts(sns: dict[str, Any]) -> list[Verdict]:
    """What a verified SNS notification carrying an SES event means, one verdict per
    recipient ([] for events that say nothing about an address)."""
    sns_id = text(sns, "MessageId", ID_CHARS)
    try:
        event = json.loads(str(sns.get("Message")))
    except (ValueError, RecursionError):
        event = None
    if not isinstance(event, dict):
        return [_unknown(sns_id, "SNS notification is not an SES event")]
    name = text(event, "notificationType", 40) or text(event, "eventType", 40)
    if name in IGNORED:
        return []
    original = _original_message_id(obj(event, "mail"))
    read = _READERS.get(name)
    if read is None:
        return [_unknown(sns_id, f"SES event {name or '(none)'!r} is not mapped", original)]
    found = read(event, original)
    if not found:
        return [_unknown(sns_id, f"SES {name} names no recipient", original)]
    several = len(found) > 1
    return [
        _with_id(verdict, external_id(SOURCE, sns_id, i if several else None))
        for i, verdict in enumerate(found)
    ]


def _bounces(event: dict[str, Any], original: str) -> list[Verdict]:
    bounce = obj(event, "bounce")
    bounce_type = text(bounce, "bounceType", 40)
    kind = _BOUNCE_KINDS.get(bounce_type, InboundKind.SOFT_BOUNCE)
    why = f"SES {bounce_type or 'unknown'}/{text(bounce, 'bounceSubType', 40) or '-'} bounce"
    return [
        _verdict(
            kind,
            recipient,
            original,
            reason(why, _action(recipient)),
            iso_time(text(bounce, "timestamp", 40)),
        )
        for recipient in items(bounce, "bouncedRecipients")
    ]


def _complaints(event: dict[str, Any], original: str) -> list[Verdict]:
    complaint = obj(event, "complaint")
    feedback = text(complaint, "complaintFeedbackType", 40)
    why = reason("SES complaint", feedback, f"(feedback id {text(complaint, 'feedbackId', 100)})")
    return [
        _verdict(
            InboundKind.COMPLAINT, recipient, original, why, iso_time(text(complaint, "timestamp"))
        )
        for recipient in items(complaint, "complainedRecipients")
    ]


def _delays(event: dict[str, Any], original: str) -> list[Verdict]:
    delay = obj(event, "deliveryDelay")
    why = reason("SES delivery delay", text(delay, "delayType", 40))
    return [
        _verdict(InboundKind.DELAYED, recipient, original, why, iso_time(text(delay, "timestamp")))
        for recipient in items(delay, "delayedRecipients")
    ]


_READERS: dict[str, Callable[[dict[str, Any], str], list[Verdict]]] = {
    "Bounce": _bounces,
    "Complaint": _complaints,
    "DeliveryDelay": _delays,
}


def _verdict(
    kind: InboundKind,
    recipient: dict[str, Any],
    original: str,
    why: str,
    at: datetime | None,
) -> Verdict:
    diagnostic = text(recipient, "diagnosticCode")
    status = text(recipient, "status", 40)
    return Verdict(
        kind,
        address=address(recipient, "emailAddress"),
        status=status_of(status, diagnostic),
        smtp_code=smtp_code_of(diagnostic),
        diagnostic=diagnostic,
        original_message_id=original,
        reason=why,
        occurred_at=at,
    )


def _action(recipient: dict[str, Any]) -> str:
    action = text(recipient, "action", 20)
    return f"(action {action})" if action else ""


def _original_message_id(mail: dict[str, Any]) -> str:
    """Our Message-ID as SES saw it: commonHeaders.messageId, else the Message-ID header."""
    common = text(obj(mail, "commonHeaders"), "messageId")
    if common:
        return message_id(common)
    for header in items(mail, "headers"):
        if text(header, "name", 40).lower() == "message-id":
            return message_id(text(header, "value"))
    return ""


def _unknown(sns_id: str, why: str, original: str = "") -> Verdict:
    return Verdict(
        InboundKind.UNKNOWN,
        original_message_id=original,
        reason=reason(why),
        external_id=external_id(SOURCE, sns_id),
    )


def _with_id(verdict: Verdict, event_id: str | None) -> Verdict:
    return replace(verdict, external_id=event_id)
