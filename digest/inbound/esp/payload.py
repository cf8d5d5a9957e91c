"""What every provider's webhook shares: refusals with their HTTP status, bounded JSON, and
provider fields made storable (one line, cut to the inbound columns)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from digest.errors import DigestError
from digest.text.controls import clean_line

# Largest payload read (bytes). SendGrid batches events (hundreds of kilobytes at peak);
# one SES, Postmark or Mailgun notification is a few kilobytes.
MAX_PAYLOAD_BYTES = 2_000_000
ADDRESS_CHARS = 320
DIAGNOSTIC_CHARS = 1000
REASON_CHARS = 300
ID_CHARS = 200  # of the provider's id; the stored external_id is `source:id[:index]`


class Refused(DigestError):
    """A payload the webhook will not act on; `status` is the HTTP answer."""

    status = 400


class Malformed(Refused):
    """Not JSON, or not the shape the provider documents (400)."""


class TooLarge(Refused):
    """Over MAX_PAYLOAD_BYTES (413)."""

    status = 413


class NotSigned(Refused):
    """No credentials or signature at all, or wrong Basic credentials (401)."""

    status = 401


class Forbidden(Refused):
    """Signed, but not by the provider: bad signature, stale or replayed, a topic or
    certificate host that is not ours (403)."""

    status = 403


class Upstream(Refused):
    """The provider's own server could not be reached (certificate, confirmation): 503, so
    that the provider sends again later."""

    status = 503


def load_json(raw: bytes) -> Any:
    """The JSON value of a payload; Malformed for anything else (bad UTF-8, too deep)."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise TooLarge(f"payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("payload is not JSON") from None


def load_object(raw: bytes) -> dict[str, Any]:
    value = load_json(raw)
    if not isinstance(value, dict):
        raise Malformed("payload is not a JSON object")
    return value


def obj(value: Any, key: str) -> dict[str, Any]:
    """`value[key]` when both are objects, else {} (a missing part reads as empty)."""
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, dict) else {}


def items(value: Any, key: str) -> list[dict[str, Any]]:
    """The objects of the list `value[key]` (anything else in it is skipped)."""
    found = value.get(key) if isinstance(value, Mapping) else None
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def text(value: Any, key: str, limit: int = DIAGNOSTIC_CHARS) -> str:
    """`value[key]` as one clean line cut to `limit` ("" when missing; numbers as text)."""
    found = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(found, bool) or found is None:
        return ""
    if isinstance(found, int | float | str):
        return clean_line(str(found)[: limit * 2])[:limit]
    return ""


def address(value: Any, key: str) -> str:
    return text(value, key, ADDRESS_CHARS)


def reason(*parts: str) -> str:
    return clean_line(" ".join(p for p in parts if p))[:REASON_CHARS]


def message_id(raw: str) -> str:
    """A Message-ID without its angle brackets or spaces ("" for nothing usable)."""
    return clean_line(raw[:1000]).strip().strip("<>").strip()[:ADDRESS_CHARS]


def external_id(source: str, event_id: str, index: int | None = None) -> str | None:
    """The stored event id: the provider's name, its id, and the recipient's index when one
    event names several recipients. Prefixed: ids of different providers never collide."""
    event_id = clean_line(event_id)[:ID_CHARS]
    if not event_id:
        return None
    return f"{source}:{event_id}" if index is None else f"{source}:{event_id}:{index}"


def iso_time(raw: str) -> datetime | None:
    """An ISO 8601 time ("2016-01-27T14:59:38.237Z", 7 decimals from .NET too), aware UTC."""
    text_ = raw.strip()
    if not text_ or len(text_) > 40:
        return None
    text_ = re.sub(r"(\.\d{6})\d+", r"\1", text_.replace("Z", "+00:00"))
    try:
        found = datetime.fromisoformat(text_)
    except ValueError:
        return None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def epoch_time(raw: Any) -> datetime | None:
    """Seconds since the epoch (an int, a float or their text), aware UTC; None if not one."""
    if isinstance(raw, bool):
        return None
    try:
        seconds = float(raw)
        return datetime.fromtimestamp(seconds, UTC) if 0 <= seconds < 1e11 else None
    except (TypeError, ValueError, OverflowError):
        return None


class Misconfigured(Refused):
    """The provider's secret in settings is unusable (503: the provider sends again once an
    operator fixed it)."""

    status = 503
