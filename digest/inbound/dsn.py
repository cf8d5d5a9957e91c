"""Delivery status notifications (RFC 3464): per recipient, what happened and why.

Hard or soft comes from the enhanced status code (RFC 3463): 5.x.x is permanent, 4.x.x
transient, whatever the Action says ("failed" with a 4.x.x status is a soft bounce). Three
permanent codes say nothing against the address and count as soft (suppressed only after
repeats, as Amazon SES classes them): 5.2.2 mailbox full (RFC 3463: the recipient can fix
it), 5.3.4 message too big, and 5.7.x, a refusal by policy (spam filter, blocked sender)
that one day's send can trigger for every reader at one provider. A bare x.0.0 Status gives
way to the more specific code of the Diagnostic-Code, and to words of a full mailbox or a
too big message. `delayed` is a warning, never a
failure; `delivered`, `relayed` and `expanded` are not failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from digest.db.models import InboundKind
from digest.inbound.message import Mail, address_of, decode_value, header_blocks, raw_header
from digest.inbound.replies import smtp_code_of, status_of

__all__ = ["Outcome", "Report", "kind_of_status", "read_dsn"]

DIAGNOSTIC_CHARS = 500
_REPORT_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
# A full mailbox or a message too big, in words: servers say it with a bare 550 or 5.0.0.
NOT_THE_ADDRESS = re.compile(
    r"mail ?(?:box|folder)(?: is)? full|inbox(?: is)? full|account is full|"
    r"over (?:the |his |her |its |disk |mailbox |storage )?quota|overquota|quota exceeded|"
    r"quota violation|(?:exceed|reach)(?:s|ed|ing)? (?:\w+ ){0,3}(?:storage|quota)|"
    r"insufficient (?:disk )?(?:space|storage)|message (?:is )?too (?:big|large)|"
    r"exceed(?:s|ed|ing)? (?:the )?maximum (?:\w+ ){0,2}(?:message )?size",
    re.I,
)
_SOFT_PERMANENT = frozenset({"5.2.2", "5.3.4"})
_SEVERITY = {InboundKind.HARD_BOUNCE: 3, InboundKind.SOFT_BOUNCE: 2, InboundKind.DELAYED: 1}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One recipient block of a DSN. `kind` is None for delivered, relayed or expanded."""

    addresses: tuple[str, ...]  # Original-Recipient first (what we sent to), then Final
    action: str
    kind: InboundKind | None
    status: str
    smtp_code: int | None
    diagnostic: str


@dataclass(frozen=True, slots=True)
class Report:
    """A DSN's recipients, worst outcome first (hard, soft, delayed, then the rest)."""

    outcomes: tuple[Outcome, ...]

    @property
    def worst(self) -> Outcome | None:
        return self.outcomes[0] if self.outcomes and self.outcomes[0].kind else None

    def addresses(self, kind: InboundKind) -> list[str]:
        """Every address named by a recipient block of `kind`, in order, once each."""
        found: list[str] = []
        for outcome in self.outcomes:
            if outcome.kind is kind:
                found.extend(a for a in outcome.addresses if a not in found)
        return found


def read_dsn(mail: Mail) -> Report | None:
    """The DSN in the message, or None when it holds no delivery-status part."""
    outcomes: list[Outcome] = []
    found = False
    for part, ctype in mail.parts:
        if ctype not in _REPORT_PARTS:
            continue
        found = True
        blocks = header_blocks(part)
        outcomes.extend(_outcome(block) for block in blocks[1:])  # [0]: per-message fields
        if blocks and _field(blocks[0], "final-recipient"):  # no per-message block at all
            outcomes.insert(0, _outcome(blocks[0]))
    if not found:
        return None
    real = [o for o in outcomes if o.addresses]
    real.sort(key=lambda o: -_SEVERITY.get(o.kind, 0) if o.kind else 0)
    return Report(tuple(real))


def _field(block: Message, name: str, limit: int = 1000) -> str:
    return decode_value(raw_header(block, name), limit)


def _outcome(block: Message) -> Outcome:
    names: list[str] = []
    for field in ("original-recipient", "final-recipient", "x-actual-recipient"):
        address = address_of(_field(block, field))
        if address and address.lower() not in (n.lower() for n in names):
            names.append(address)
        if field == "final-recipient" and names:
            break  # X-Actual-Recipient only when neither standard field named anyone
    action = _field(block, "action", 100).lower()
    diagnostic_field = _field(block, "diagnostic-code", DIAGNOSTIC_CHARS + 20)
    diagnostic = diagnostic_field.partition(";")[2].strip() if ";" in diagnostic_field[:20] else ""
    diagnostic = (diagnostic or diagnostic_field)[:DIAGNOSTIC_CHARS]
    status_field = _field(block, "status", 200)
    status = status_of(status_field)
    said = status_of(diagnostic)
    if said and (not status or (status.endswith(".0.0") and said[0] == status[0])):
        status = said
    code = smtp_code_of(diagnostic) or smtp_code_of(status_field)
    kind = _kind(action, status, code)
    unspecific = not status or status.endswith(".0.0")
    said_soft = NOT_THE_ADDRESS.search(f"{status_field} {diagnostic}")
    if kind is InboundKind.HARD_BOUNCE and unspecific and said_soft:
        kind = InboundKind.SOFT_BOUNCE  # "5.0.0 (recipient reached disk quota)"
    return Outcome(
        addresses=tuple(names),
        action=next(iter(action.split()), ""),  # "failed (bad destination)" -> failed
        kind=kind,
        status=status,
        smtp_code=code,
        diagnostic=diagnostic,
    )


def kind_of_status(status: str, code: int | None) -> InboundKind | None:
    """Hard or soft from the enhanced status, else the reply code; None: neither says."""
    if status.startswith("5."):
        soft = status in _SOFT_PERMANENT or status.startswith("5.7.")
        return InboundKind.SOFT_BOUNCE if soft else InboundKind.HARD_BOUNCE
    if status.startswith("4."):
        return InboundKind.SOFT_BOUNCE
    if code == 552:  # RFC 5321: "exceeded storage allocation", as 5.2.2
        return InboundKind.SOFT_BOUNCE
    if code is not None and 500 <= code < 600:
        return InboundKind.HARD_BOUNCE
    if code is not None and 400 <= code < 500:
        return InboundKind.SOFT_BOUNCE
    return None


def _kind(action: str, status: str, code: int | None) -> InboundKind | None:
    if action.startswith("delayed"):
        return InboundKind.DELAYED
    if action.startswith(("delivered", "relayed", "expanded")):
        return None
    by_status = kind_of_status(status, code)
    if action.startswith(("fail", "error")):  # opensmtpd writes "error"
        # 2.x.x on a failure contradicts itself: the Action is the stronger statement.
        return by_status or InboundKind.HARD_BOUNCE
    return by_status  # no usable Action: the status alone decides
