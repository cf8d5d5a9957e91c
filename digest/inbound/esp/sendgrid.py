"""SendGrid's signed event webhook: ECDSA P-256 / SHA-256 over the timestamp and the body,
a fresh timestamp, then a batch of events (bounce, deferred, spamreport, unsubscribe …)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.db.models import InboundKind
from digest.errors import ConfigError
from digest.inbound.esp.payload import (
    ID_CHARS,
    Forbidden,
    Malformed,
    NotSigned,
    address,
    epoch_time,
    external_id,
    load_json,
    message_id,
    reason,
    text,
)
from digest.inbound.replies import smtp_code_of, status_of
from digest.inbound.verdicts import Verdict

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Events about sending or reading that say nothing about the address: not recorded.
IGNORED = frozenset({"processed", "delivered", "open", "click", "group_resubscribe"})


def public_key(setting: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or PEM; ConfigError if not a
    P-256 public key."""
    try:
        if setting.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(setting.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(setting, validate=True))
    except (ValueError, binascii.Error, UnicodeError, UnsupportedAlgorithm):
        raise ConfigError("[inbound.esp] sendgrid_public_key is not a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError("[inbound.esp] sendgrid_public_key is not an ECDSA P-256 key")
    return key


class SendGridVerifier:
    """Checks SendGrid's signature headers against the raw body."""

    def __init__(self, key: ec.EllipticCurvePublicKey, max_age_seconds: float) -> None:
        self.key = key
        self.max_age = max_age_seconds

    def verify(
        self, signature: str | None, timestamp: str | None, raw: bytes, now: datetime
    ) -> None:
        """NotSigned without the headers; Forbidden for a stale timestamp or a bad signature."""
        if not signature or not timestamp:
            raise NotSigned("no SendGrid signature headers")
        stamp = timestamp.strip()
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise Forbidden("SendGrid timestamp is not a number")
        if abs(now.timestamp() - int(stamp)) > self.max_age:
            raise Forbidden("SendGrid timestamp is stale")
        try:
            decoded = base64.b64decode(signature.strip(), validate=True)
            self.key.verify(decoded, stamp.encode("ascii") + raw, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise Forbidden("SendGrid signature does not verify") from None


def sendgrid_verdicts(raw: bytes) -> list[Verdict]:
    """The verdicts of a batch of SendGrid events, in order (ignored events left out)."""
    batch = load_json(raw)
    if not isinstance(batch, list):
        raise Malformed("SendGrid payload is not a list of events")
    found: list[Verdict] = []
    for event in batch:
        name = text(event, "event", 40)
        if name in IGNORED:
            continue
        read = _READERS.get(name, _unknown)
        found.append(read(event if isinstance(event, dict) else {}))
    return found


def _bounce(event: dict[str, Any]) -> Verdict:
    # "blocked": the receiving server refused for now (reputation, content): soft.
    blocked = text(event, "type", 20) == "blocked"
    kind = InboundKind.SOFT_BOUNCE if blocked else InboundKind.HARD_BOUNCE
    return _verdict(event, kind, f"SendGrid {'blocked' if blocked else 'bounce'}")


def _deferred(event: dict[str, Any]) -> Verdict:
    return _verdict(event, InboundKind.DELAYED, "SendGrid deferred", text(event, "response"))


def _dropped(event: dict[str, Any]) -> Verdict:
    # SendGrid did not send (its own suppression list, an invalid address …): recorded as
    # unknown so that the address's story shows it, never counted against the address.
    why = f"SendGrid dropped the message: {text(event, 'reason', 200) or 'no reason given'}"
    return _verdict(event, InboundKind.UNKNOWN, why)


def _unknown(event: dict[str, Any]) -> Verdict:
    name = text(event, "event", 40)
    return _verdict(
        event, InboundKind.UNKNOWN, f"SendGrid event {name or '(none)'!r} is not mapped"
    )


def _verdict(event: dict[str, Any], kind: InboundKind, why: str, diagnostic: str = "") -> Verdict:
    diagnostic = diagnostic or text(event, "reason")
    return Verdict(
        kind,
        address=address(event, "email"),
        status=status_of(text(event, "status", 40), diagnostic),
        smtp_code=smtp_code_of(diagnostic),
        diagnostic=diagnostic,
        original_message_id=message_id(text(event, "smtp-id")),
        reason=reason(why),
        external_id=external_id(SOURCE, text(event, "sg_event_id", ID_CHARS)),
        occurred_at=epoch_time(event.get("timestamp")),
    )


def _simple(kind: InboundKind, why: str) -> Callable[[dict[str, Any]], Verdict]:
    return lambda event: _verdict(event, kind, why)


_READERS: dict[str, Callable[[dict[str, Any]], Verdict]] = {
    "bounce": _bounce,
    "deferred": _deferred,
    "dropped": _dropped,
    "spamreport": _simple(InboundKind.COMPLAINT, "SendGrid spam report"),
    "unsubscribe": _simple(InboundKind.UNSUBSCRIBE, "SendGrid unsubscribe"),
    "group_unsubscribe": _simple(InboundKind.UNSUBSCRIBE, "SendGrid group unsubscribe"),
}
