"""Complaints from mailbox providers' feedback loops: ARF (RFC 5965), as Yahoo, AOL and most
providers send it, and Microsoft's JMRP, which attaches the reported message with the
complainant in `X-HmXmrOriginalRecipient`.

Who complained: `Original-Rcpt-To` (or `Removal-Recipient`), else the reported message's
`X-Original-To`, `Delivered-To` or `To`. Providers that redact the recipient (AOL, Yahoo)
leave none of these usable: the VERP token or Message-ID in the reported headers then
names the delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from digest.db.models import InboundKind
from digest.inbound.message import (
    Mail,
    addresses_in,
    decode_value,
    header_blocks,
    raw_header,
    raw_headers,
    returned,
)

__all__ = ["Complaint", "read_complaint"]

# Feedback types that are someone asking not to get the mail (RFC 5965, RFC 6650, drafts).
_COMPLAINTS = frozenset({"abuse", "fraud", "virus", "other", "opt-out", "opt-out-list"})
_NOT_COMPLAINTS = {
    "not-spam": "a not-spam report (the reader rescued the message), not a complaint",
    "auth-failure": "an authentication failure report (RFC 6591), not a complaint",
    "dmarc": "a DMARC failure report, not a complaint",
}
_MICROSOFT = ("hotmail.com", "outlook.com", "live.com", "msn.com", "microsoft.com")
_RECIPIENT_FIELDS = ("x-original-to", "delivered-to", "to")


@dataclass(frozen=True, slots=True)
class Complaint:
    """What a feedback report says: COMPLAINT, or UNKNOWN for reports that are not one."""

    kind: InboundKind
    addresses: tuple[str, ...]
    feedback_type: str
    reported: Message | None  # the reported message or its headers
    reason: str


def read_complaint(mail: Mail) -> Complaint | None:
    """The complaint in the message, or None when it is not a feedback report."""
    report = next((p for p, ctype in mail.parts if ctype == "message/feedback-report"), None)
    if report is not None:
        return _arf(mail, report)
    return _jmrp(mail)


def _arf(mail: Mail, report: Message) -> Complaint:
    fields = [(key.lower(), str(value)) for b in header_blocks(report) for key, value in b.items()]
    feedback_type = next(
        (decode_value(v, 60).lower() for k, v in fields if k == "feedback-type"), ""
    )
    feedback_type = next(iter(feedback_type.split()), "abuse")
    reported = returned(mail)
    if feedback_type in _NOT_COMPLAINTS:
        reason = f"Feedback-Type {feedback_type}: {_NOT_COMPLAINTS[feedback_type]}"
        return Complaint(InboundKind.UNKNOWN, (), feedback_type, reported, reason)
    named: list[str] = []
    for wanted in ("original-rcpt-to", "removal-recipient"):
        for key, value in fields:
            if key == wanted:
                _add(named, addresses_in(decode_value(value, 500)))
        if named:
            break
    if not named:
        named = _reported_recipients(mail.msg, reported)
    kind_of = "a complaint" if feedback_type in _COMPLAINTS else "an unknown feedback type"
    reason = f"ARF feedback report (RFC 5965), Feedback-Type {feedback_type}: {kind_of}"
    return Complaint(InboundKind.COMPLAINT, tuple(named), feedback_type, reported, reason)


def _jmrp(mail: Mail) -> Complaint | None:
    """Microsoft's JMRP: a reported message attached whole, marked by Microsoft's fields."""
    reported = returned(mail)
    if reported is None:
        return None
    marker = raw_header(mail.msg, "x-hmxmroriginalrecipient") or raw_header(
        reported, "x-hmxmroriginalrecipient"
    )
    sender_domain = mail.header("from", 300).lower().rstrip(">").rpartition("@")[2]
    from_microsoft = sender_domain.endswith(_MICROSOFT)
    if marker is None and not (from_microsoft and raw_header(reported, "x-sid-pra")):
        return None
    named: list[str] = []
    _add(named, addresses_in(decode_value(marker, 500)))
    if not named:
        named = _reported_recipients(mail.msg, reported)
    reason = "Microsoft JMRP complaint (junk mail reporting program)"
    return Complaint(InboundKind.COMPLAINT, tuple(named), "abuse", reported, reason)


def _reported_recipients(msg: Message, reported: Message | None) -> list[str]:
    """Who received the reported message, when the report does not say: its own fields."""
    named: list[str] = []
    for source in (reported, msg):
        if source is None:
            continue
        for field in ("x-hmxmroriginalrecipient", *_RECIPIENT_FIELDS):
            if source is msg and field != "x-hmxmroriginalrecipient":
                continue  # the report's own To is the feedback address, not the complainant
            for value in raw_headers(source, field)[:20]:
                _add(named, addresses_in(decode_value(value, 500)))
            if named:
                return named
    return named


def _add(named: list[str], found: list[str]) -> None:
    for address in found:
        lowered = address.lower()
        # AOL and Yahoo redact the complainant ("redacted@aol.com", "xxxxxxx@…").
        if "redacted" in lowered or set(lowered.partition("@")[0]) <= {"x", "*", "."}:
            continue
        if lowered not in (n.lower() for n in named):
            named.append(address)
