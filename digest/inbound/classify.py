"""One inbound message read into exactly one `Verdict`, without the database.

Order: the signed token of the envelope recipient (`u-`: a mailto unsubscribe, whatever the
message says; `b-`: names the delivery), a legacy `unsubscribe TOKEN` subject, then the
content: a DSN, a feedback report, an auto-reply or challenge, a bounce format flufl.bounce
knows. Last, the returned headers fill what identifies the delivery (a VERP token, the
original Message-ID, List-Id). Nothing raises: what cannot be read is UNKNOWN with why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import Message

from digest.config import Settings
from digest.db.models import InboundKind
from digest.inbound.arf import read_complaint
from digest.inbound.autoreply import read_automatic
from digest.inbound.detectors import detect
from digest.inbound.dsn import Report, read_dsn
from digest.inbound.message import (
    Mail,
    Unreadable,
    address_of,
    decode_value,
    parse,
    raw_header,
)
from digest.inbound.message import returned as _returned
from digest.inbound.verdicts import Received, Verdict
from digest.text.controls import clean_line
from digest.tracking.tokens import BadToken, Purpose, Signer
from digest.tracking.verp import BadVerp, Verp, VerpKind, VerpRef

__all__ = ["Reader"]

log = logging.getLogger(__name__)

SEARCH_BYTES = 1_000_000  # returned headers sit near the top; a token further down is noise
DETECTOR_BYTES = 64_000  # flufl.bounce's heuristics read line by line, some in quadratic time
_LONG_LINE = re.compile(rb"[^\n]{999}")  # RFC 5322: a line is at most 998 characters
_LEGACY_SUBJECT = re.compile(r"\s*unsubscribe\s+([0-9]{1,18}(?:-[0-9]{1,18})*\.[\w-]{8,100})\s*")
_TOKEN_LIKE = re.compile(r"[bu]-[0-9a-z]+-[0-9a-z]+", re.I)
_MESSAGE_ID = re.compile(r"^message-id:[ \t]*<?([^\s<>]{1,250})>?", re.I | re.M)
_LIST_ID = re.compile(r"^list-id:[^<\r\n]*<([^\s<>]{1,250})>", re.I | re.M)
_TO_FIELDS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to")


@dataclass(frozen=True, slots=True)
class _Envelope:
    ref: VerpRef | None
    note: str  # a forged token, or mail to one of the mailboxes


class Reader:
    """Reads messages into verdicts with the keys that sign our tokens."""

    def __init__(
        self, verp: Verp, signer: Signer, max_nesting: int, mailboxes: tuple[str, ...]
    ) -> None:
        self.verp = verp
        self.signer = signer
        self.max_nesting = max_nesting
        self.mailboxes = frozenset(box.strip().lower() for box in mailboxes) - {""}

    @classmethod
    def from_settings(cls, settings: Settings) -> Reader:
        inbound = settings.inbound
        domain = inbound.domain or settings.sender.list_id_domain
        return cls(
            Verp(settings.web.secret_key, domain),
            Signer(settings.web.secret_key),
            inbound.max_nesting,
            tuple(inbound.mailboxes),
        )

    def read(self, received: Received) -> Verdict:
        """What the message is; UNKNOWN with the reason when it cannot be read. Never raises."""
        try:
            return self._read(received)
        except Exception as exc:  # a bug must cost one message, not the batch or the server
            log.exception("inbound message could not be classified")
            return Verdict(InboundKind.UNKNOWN, reason=f"classifier failed: {type(exc).__name__}")

    def _read(self, received: Received) -> Verdict:
        envelope = self._envelope(received.envelope_to)
        try:
            mail = parse(received.raw, max_nesting=self.max_nesting)
        except Unreadable as exc:
            if envelope.ref is not None and envelope.ref.kind is VerpKind.UNSUBSCRIBE:
                return Verdict(InboundKind.UNSUBSCRIBE, verp=envelope.ref, reason=_U_REASON)
            return Verdict(InboundKind.UNKNOWN, verp=envelope.ref, reason=_join(exc.why, envelope))
        unsubscribe = self._unsubscribe(mail, envelope, received)
        if unsubscribe is not None:
            return unsubscribe
        verdict = self._content(mail)
        return self._identified(mail, verdict, envelope)

    def _envelope(self, recipients: tuple[str, ...]) -> _Envelope:
        notes: list[str] = []
        for address in recipients[:50]:
            local = address.strip().strip("<>").rpartition("@")[0].lower()
            if local in self.mailboxes:
                notes.append(f"sent to {local}@")
                continue
            ref = self.verp.find(address[:320])
            if ref is not None:
                return _Envelope(ref, "")
            if _TOKEN_LIKE.match(local):
                try:
                    self.verp.check_token(local)
                except BadVerp as exc:
                    notes.append(f"envelope token refused: {clean_line(exc.why)[:120]}")
        return _Envelope(None, "; ".join(notes))

    def _unsubscribe(self, mail: Mail, envelope: _Envelope, received: Received) -> Verdict | None:
        """A mailto unsubscribe: the `u-` address, or the legacy `unsubscribe TOKEN` subject."""
        sender = address_of(mail.header("from", 500))
        ref = envelope.ref
        if ref is None and not received.envelope_to:  # a mailbox or file: only the headers
            ref = self._header_ref(mail)
        if ref is not None and ref.kind is VerpKind.UNSUBSCRIBE:
            return Verdict(InboundKind.UNSUBSCRIBE, address=sender, verp=ref, reason=_U_REASON)
        found = _LEGACY_SUBJECT.fullmatch(mail.header("subject", 300))
        if found is None:
            return None
        try:
            self.signer.loads(Purpose.UNSUBSCRIBE, found.group(1))
        except BadToken:
            return None  # read on: the content decides, and UNKNOWN says nothing verified
        return Verdict(
            InboundKind.UNSUBSCRIBE,
            address=sender,
            verp=envelope.ref,
            reason="mailto unsubscribe (legacy `unsubscribe TOKEN` subject, signature valid)",
            unsubscribe_token=found.group(1),
        )

    def _header_ref(self, mail: Mail) -> VerpRef | None:
        for field in _TO_FIELDS:
            value = raw_header(mail.msg, field)
            if value:
                ref = self.verp.find(decode_value(value, 1000), VerpKind.UNSUBSCRIBE)
                if ref is not None:
                    return ref
        return None

    def _content(self, mail: Mail) -> _Found:
        report = read_dsn(mail)
        if report is not None and report.outcomes:
            return _from_dsn(report, mail)
        complaint = read_complaint(mail)
        if complaint is not None:
            return _Found(
                Verdict(
                    complaint.kind,
                    *_named(complaint.addresses),
                    diagnostic=f"Feedback-Type: {complaint.feedback_type}",
                    reason=complaint.reason,
                ),
                complaint.reported,
            )
        automatic = read_automatic(mail)
        if automatic is not None and automatic.strong:
            return _Found(Verdict(automatic.kind, reason=automatic.reason), None)
        detected = detect(self._for_detectors(mail).msg)
        if detected is not None and detected.addresses:
            kind = detected.kind
            reason = f"{detected.detector} bounce format (flufl.bounce), {kind.value}"
            verdict = Verdict(
                kind,
                *_named(detected.addresses),
                status=detected.status,
                smtp_code=detected.smtp_code,
                diagnostic=detected.diagnostic,
                reason=reason,
            )
            return _Found(verdict, _returned(mail))
        if automatic is not None:
            return _Found(Verdict(automatic.kind, reason=automatic.reason), None)
        return _Found(Verdict(InboundKind.UNKNOWN, reason=_NOTHING), None)

    def _for_detectors(self, mail: Mail) -> Mail:
        """The message cut for flufl.bounce's line heuristics: 64 KB, lines of 998."""
        raw = mail.raw
        if len(raw) <= DETECTOR_BYTES and _LONG_LINE.search(raw) is None:
            return mail
        raw = _LONG_LINE.sub(lambda line: line.group(0)[:998], raw[:DETECTOR_BYTES])
        try:
            return parse(raw, max_nesting=self.max_nesting)
        except Unreadable:
            return mail

    def _identified(self, mail: Mail, found: _Found, envelope: _Envelope) -> Verdict:
        verdict = found.verdict
        returned = found.returned
        body = _body_text(mail)
        ref = envelope.ref or self.verp.find(mail.text()[:SEARCH_BYTES])
        message_id = _message_id(returned, body)
        if not message_id and verdict.kind in (InboundKind.AUTO_REPLY, InboundKind.CHALLENGE):
            message_id = _strip_id(mail.header("in-reply-to", 300))
        list_id = _list_id(returned, body)
        reason = verdict.reason
        if verdict.kind is InboundKind.UNKNOWN:
            reason = _join(reason, envelope)
            if ref is not None and ref.kind is VerpKind.BOUNCE:
                reason += " (sent to our bounce address)"
        return replace(
            verdict, verp=ref, original_message_id=message_id, list_id=list_id, reason=reason
        )


@dataclass(frozen=True, slots=True)
class _Found:
    verdict: Verdict
    returned: Message | None  # the returned or reported message's headers


_U_REASON = "mailto unsubscribe (mail to the u- address)"
_NOTHING = "no bounce, complaint, unsubscribe or auto-reply found"


def _from_dsn(report: Report, mail: Mail) -> _Found:
    worst = report.worst
    if worst is None or worst.kind is None:
        actions = sorted({o.action or "no action" for o in report.outcomes})
        reason = f"DSN (RFC 3464) reports no failure: {', '.join(actions)}"
        return _Found(Verdict(InboundKind.UNKNOWN, reason=reason), _returned(mail))
    names = report.addresses(worst.kind)
    status = f", {worst.status}" if worst.status else ""
    verdict = Verdict(
        worst.kind,
        *_named(names),
        status=worst.status,
        smtp_code=worst.smtp_code,
        diagnostic=worst.diagnostic,
        reason=f"DSN (RFC 3464): {worst.action or 'no action'}{status}, {worst.kind.value}",
    )
    return _Found(verdict, _returned(mail))


def _named(addresses: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """A verdict's `address` and `also` from the addresses a report names (maybe none)."""
    return (addresses[0], tuple(addresses[1:])) if addresses else ("", ())


def _body_text(mail: Mail) -> str:
    """The text after the top-level header block (bounces quote the original there)."""
    raw = mail.raw[:SEARCH_BYTES]
    end = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n")
    if crlf != -1 and (end == -1 or crlf < end):
        end = crlf
    return "" if end == -1 else raw[end:].decode("latin-1")


def _message_id(returned: Message | None, body: str) -> str:
    if returned is not None:
        found = _strip_id(decode_value(raw_header(returned, "message-id"), 300))
        if found:
            return found
    match = _MESSAGE_ID.search(body)
    return clean_line(match.group(1)) if match else ""


def _list_id(returned: Message | None, body: str) -> str:
    if returned is not None:
        value = decode_value(raw_header(returned, "list-id"), 300)
        if "<" in value:
            return _strip_id(value[value.rindex("<") :])
    match = _LIST_ID.search(body)
    return clean_line(match.group(1)) if match else ""


def _strip_id(value: str) -> str:
    value = value.strip()
    opened = value.find("<")
    closed = value.find(">", opened + 1) if opened != -1 else -1
    if closed != -1:  # the first <…>; a ">" before any "<" is not a bracket pair
        value = value[opened + 1 : closed]
    return clean_line(value.strip("<> "))[:250] if value and " " not in value.strip() else ""


def _join(reason: str, envelope: _Envelope) -> str:
    return f"{reason}; {envelope.note}" if envelope.note else reason
