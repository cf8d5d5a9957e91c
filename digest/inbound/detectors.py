"""Bounces in the formats before (or beside) RFC 3464: qmail, Exim, Exchange, GroupWise,
Yahoo, AOL, old Postfix and Sendmail wording and others, read by flufl.bounce (Mailman's
detectors) behind this one function.

flufl.bounce says which addresses failed and, where the format tells, temporary (its
warnings: "still trying", "delayed") or permanent. Temporary is our DELAYED. A permanent
failure is hard unless its text says otherwise, in this order: an enhanced status code
(as in a DSN), words of a full mailbox or a too big message ("over quota"), an SMTP reply
code of class 4 (or 552), words of a server giving up after retries ("queue period").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce._scan import _DETECTORS  # the ordered list scan_message itself runs

from digest.db.models import InboundKind
from digest.inbound.dsn import DIAGNOSTIC_CHARS, NOT_THE_ADDRESS, kind_of_status
from digest.inbound.message import part_text, typed_parts
from digest.inbound.replies import STATUS

__all__ = ["Detected", "detect", "detector_names"]

log = logging.getLogger(__name__)

TEXT_CHARS = 20_000  # the explanation is at the top; the returned message follows
_REPLY = re.compile(r"(?:^|[\s:(\[#=\"'])([45][0-5]\d)(?=[\s\-)\]])", re.M)
# The server gave up after retrying: the cause was transient (as a DSN's failed 4.x.x).
_TRANSIENT = re.compile(
    r"temporar(?:y|ily)|try again later|try to resend|will (?:be )?retr(?:y|ied)|"
    r"still trying|not reachable|unreachable|queue period|in the queue too long|"
    r"timed? ?out|aborted after \d|failed \d+ attempts|after \d+ attempt",
    re.I,
)
# Where the returned copy of the message begins in plain-text bounces.
_COPY = re.compile(
    r"^[-\s]*(?:below this line is a copy|original message|this is a copy|"
    r"the (?:original|text of your) message|message headers follow|returned mail|"
    r"-{3,} ?(?:the )?original)",
    re.I | re.M,
)


@dataclass(frozen=True, slots=True)
class Detected:
    """What one of flufl.bounce's detectors found."""

    kind: InboundKind  # HARD_BOUNCE, SOFT_BOUNCE or DELAYED
    addresses: tuple[str, ...]  # never empty; sorted: the detectors return sets
    detector: str  # flufl.bounce's name for the format: "Qmail", "Exchange", ...
    status: str
    smtp_code: int | None
    diagnostic: str


def detector_names() -> list[str]:
    return [detector.__name__ for detector in _DETECTORS]


def detect(msg: Message) -> Detected | None:
    """The failed recipients of a non-standard bounce, or None when no detector knows it.

    Detectors run in flufl.bounce's order (most specific first) and the first that finds a
    usable address (one with "@") answers, as in its `all_failures`; one that finds none, or
    raises on a hostile message (logged at debug), is skipped instead of ending the scan."""
    for detector in _DETECTORS:
        try:
            temporary, permanent = detector().process(msg)
        except Exception:  # a heuristic tripping over a malformed message
            log.debug("flufl.bounce %s failed on a message", detector.__name__, exc_info=True)
            continue
        name = detector.__name__
        permanent_addresses = _addresses(permanent)
        if permanent_addresses:
            return _permanent(msg, permanent_addresses, name)
        temporary_addresses = _addresses(temporary)
        if temporary_addresses:
            return Detected(InboundKind.DELAYED, temporary_addresses, name, "", None, "")
        # Nothing usable ("nobody", a bare local part): the next detector may know better.
    return None


def _addresses(found: object) -> tuple[str, ...]:
    """The detector's findings that look like addresses, decoded and sorted."""
    if not isinstance(found, set | frozenset):
        return ()  # a detector's contract is a set of bytes: anything else names nobody
    decoded = {
        a.decode("ascii", "replace").strip().strip("<>")[:254]
        for a in found
        if isinstance(a, bytes)
    }
    return tuple(sorted(a for a in decoded if "@" in a))


def _permanent(msg: Message, addresses: tuple[str, ...], name: str) -> Detected:
    text = explanation(msg)
    enhanced = [m.group(0) for m in STATUS.finditer(text) if m.group(1) != "2"]  # failures
    replies = [int(m.group(1)) for m in _REPLY.finditer(text)]
    hard = [s for s in enhanced if kind_of_status(s, None) is InboundKind.HARD_BOUNCE]
    status = hard[0] if hard else (enhanced[0] if enhanced else "")
    code = next((c for c in replies if c >= 500), replies[0] if replies else None)
    kind = kind_of_status(status, None)
    if kind is None and NOT_THE_ADDRESS.search(text):
        kind = InboundKind.SOFT_BOUNCE
    kind = kind or kind_of_status("", code)
    if kind is None:
        kind = InboundKind.SOFT_BOUNCE if _TRANSIENT.search(text) else InboundKind.HARD_BOUNCE
    return Detected(kind, addresses, name, status, code, _diagnostic(text, status, code))


def explanation(msg: Message) -> str:
    """The bounce's own text: its text parts up to where the returned message starts."""
    pieces: list[str] = []
    size = 0
    for part, ctype in typed_parts(msg):
        if ctype.startswith("message/") and part is not msg:
            break  # the returned message: its text is not the bounce's
        if not ctype.startswith("text/"):
            continue
        text = part_text(part, TEXT_CHARS)
        copy = _COPY.search(text)
        pieces.append(text[: copy.start()] if copy else text)
        size += len(pieces[-1])
        if copy or size >= TEXT_CHARS:
            break
    return "\n".join(pieces)[:TEXT_CHARS]


def _diagnostic(text: str, status: str, code: int | None) -> str:
    """The line holding the status or reply code: the remote server's words."""
    needles = [n for n in (status, str(code) if code else "") if n]
    for line in text.splitlines():
        if any(n in line for n in needles):
            return " ".join(line.split())[:DIAGNOSTIC_CHARS]
    return ""
