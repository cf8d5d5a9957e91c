"""Mailgun's webhooks: HMAC-SHA256 of timestamp and token under the signing key, a fresh
timestamp and an unused token (the signature does not cover the body), then the event."""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime
from typing import Any

from digest.db.models import InboundKind
from digest.inbound.esp.payload import (
    ID_CHARS,
    Forbidden,
    NotSigned,
    address,
    epoch_time,
    external_id,
    message_id,
    obj,
    reason,
    text,
)
from digest.inbound.replies import smtp_code_of, status_of
from digest.inbound.verdicts import Verdict

SOURCE = "mailgun"
IGNORED = frozenset({"accepted", "delivered", "opened", "clicked", "stored", "rejected"})
MAX_TOKENS = 200_000  # remembered at once; past it the oldest are forgotten


class TokenMemory:
    """Tokens seen within the freshness window, in this process's memory (several web
    processes each keep their own; the event id still counts an event once in the database).
    A token comes back only with the very body it came with (a provider's retry)."""

    def __init__(self, max_age_seconds: float, limit: int = MAX_TOKENS) -> None:
        self.max_age = max_age_seconds
        self.limit = limit
        self._seen: dict[str, tuple[float, str]] = {}  # token -> (timestamp, body digest)
        self._swept_at = 0.0
        self._lock = threading.Lock()

    def check(self, token: str, timestamp: float, digest: str, now: float) -> None:
        """Forbidden when `token` came before with another body; remembers it otherwise."""
        with self._lock:
            self._forget(now)
            seen = self._seen.get(token)
            if seen is not None and seen[1] != digest:
                raise Forbidden("Mailgun token replayed with another payload")
            self._seen[token] = (timestamp, digest)

    def __len__(self) -> int:
        return len(self._seen)

    def _forget(self, now: float) -> None:
        # Tokens older than twice the window are refused as stale anyway: a sweep per window.
        if now - self._swept_at > self.max_age:
            horizon = now - 2 * self.max_age
            self._seen = {t: seen for t, seen in self._seen.items() if seen[0] >= horizon}
            self._swept_at = now
        while len(self._seen) >= self.limit:  # a flood: forget the oldest first
            del self._seen[next(iter(self._seen))]


class MailgunVerifier:
    """Checks a Mailgun payload's `signature` object with the signing key."""

    def __init__(self, signing_key: str, max_age_seconds: float) -> None:
        self.key = signing_key.encode("utf-8")
        self.max_age = max_age_seconds
        self.tokens = TokenMemory(max_age_seconds)

    def verify(self, payload: dict[str, Any], raw: bytes, now: datetime) -> None:
        """NotSigned without a signature; Forbidden when it does not verify, is stale, or its
        token was used for another payload."""
        signature = obj(payload, "signature")
        stamp, token, given = (text(signature, k, 200) for k in ("timestamp", "token", "signature"))
        if not (stamp and token and given):
            raise NotSigned("no Mailgun signature")
        expected = hmac.new(self.key, (stamp + token).encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8")):
            raise Forbidden("Mailgun signature does not verify")
        at = epoch_time(stamp)
        if at is None or abs((now - at).total_seconds()) > self.max_age:
            raise Forbidden("Mailgun timestamp is stale")
        digest = hashlib.sha256(raw).hexdigest()
        self.tokens.check(token, at.timestamp(), digest, now.timestamp())


def mailgun_verdicts(payload: dict[str, Any]) -> list[Verdict]:
    """The verdict of one Mailgun event ([] for events we do not record)."""
    event = obj(payload, "event-data")
    name = text(event, "event", 40)
    if name in IGNORED:
        return []
    severity = text(event, "severity", 20)
    if name == "failed":
        permanent = severity == "permanent"
        kind = InboundKind.HARD_BOUNCE if permanent else InboundKind.SOFT_BOUNCE
        why = f"Mailgun {severity or 'temporary'} failure"
    elif name == "complained":
        kind, why = InboundKind.COMPLAINT, "Mailgun complaint"
    elif name == "unsubscribed":
        kind, why = InboundKind.UNSUBSCRIBE, "Mailgun unsubscribe"
    else:
        kind, why = InboundKind.UNKNOWN, f"Mailgun event {name or '(none)'!r} is not mapped"
    status = obj(event, "delivery-status")
    diagnostic = text(status, "message") or text(status, "description")
    headers = obj(obj(event, "message"), "headers")
    return [
        Verdict(
            kind,
            address=address(event, "recipient"),
            status=status_of(text(status, "enhanced-code", 20), diagnostic),
            smtp_code=smtp_code_of(status.get("code"), diagnostic),
            diagnostic=diagnostic,
            original_message_id=message_id(text(headers, "message-id")),
            reason=reason(why, f"({text(event, 'reason', 60)})" if event.get("reason") else ""),
            external_id=external_id(SOURCE, text(event, "id", ID_CHARS)),
            occurred_at=epoch_time(event.get("timestamp")),
        )
    ]
