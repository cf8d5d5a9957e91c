"""What came in (`Received`) and what it means (`Verdict`): the plain data every inbound path
shares, from the SMTP server, files and IMAP to the providers' webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from digest.db.models import InboundKind
from digest.tracking.verp import VerpRef

__all__ = ["InboundKind", "Received", "Source", "Verdict"]


class Source(StrEnum):
    """How a message or event came in (stored on every inbound row)."""

    SMTP = "smtp"  # `digest inbound`, the bounce domain's MX
    FILE = "file"  # `digest inbound process PATH` (eml, mbox, Maildir)
    STDIN = "stdin"  # `digest inbound process -` (an MTA's pipe transport)
    IMAP = "imap"  # the scheduler's poll of [inbound.imap]
    SES = "ses"
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it arrived, before anything is read from it. `envelope_to` holds the
    RCPT TO addresses when an SMTP server saw them (a `b-`/`u-` address names the delivery)."""

    raw: bytes
    source: Source
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    received_at: datetime | None = None  # None: the processor's clock


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one message (or ESP event) is, and what identifies the delivery it is about.

    `address` is the recipient the bounce or complaint names (the complainant for ARF, the
    sender for a mailto unsubscribe); `also` holds further failed recipients of the same DSN.
    The policy affects a delivery only when its own recipient is among them. `reason` says
    how the message was read, or, for UNKNOWN, why it could not be.
    """

    kind: InboundKind
    address: str = ""
    also: tuple[str, ...] = ()
    status: str = ""  # RFC 3463 enhanced status, "5.1.1"
    smtp_code: int | None = None  # 550
    diagnostic: str = ""  # Diagnostic-Code text, one line, bounded
    verp: VerpRef | None = None  # a signed b-/u- token found (envelope, headers, Message-ID)
    original_message_id: str = ""  # Message-ID of the returned or reported message, no <>
    list_id: str = ""  # List-Id of the returned message, no <>
    reason: str = ""
    external_id: str | None = None  # an ESP's event id: the same event twice counts once
    occurred_at: datetime | None = None  # when the provider saw it (ESP events)
    unsubscribe_token: str = ""  # a legacy `unsubscribe TOKEN` subject (signed link token)
