"""The sending contract: an Envelope goes in, an Outcome comes out, through any Sender.

`Outcome` is the one type of a send's result, from the SMTP pool (or the .eml writer) to the
outbox recorder: the SMTP pool lives in `digest.send.smtp`, the .eml writer in
`digest.send.files`, retry timing in `digest.send.retry`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self

Status = Literal["sent", "temporary", "permanent"]
Stage = Literal["", "connect", "MAIL", "RCPT", "DATA", "file"]
# Whose problem a permanent failure is: the reader's address (suppress it), the sender's side
# (relay, login, MAIL FROM: retry once fixed, suppress nobody), or this message only.
Blame = Literal["reader", "sender", "message"]

# Enhanced status codes (RFC 3463) that mean "you are sending too fast": 4.7.28 (Gmail rate
# limit), 4.3.0 (generic, used for throttling by Yahoo and others), 4.2.1 (try again later).
THROTTLE_STATUSES = frozenset({"4.7.28", "4.3.0", "4.2.1"})
_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")
# Replies about our side, whatever the code or stage: the relay will not relay for us, wants
# a login, refuses our sender address ("relay not permitted", "Relay access denied",
# "authentication required", "Sender address rejected", ...). Not the bare word "relay":
# Postfix says "User unknown in relay recipient table" of a reader's address.
_SENDER_TEXT = re.compile(
    r"relay(?:ing)?\s+(?:access\s+)?(?:denied|not permitted|prohibited)|unable to relay"
    r"|relay not (?:allowed|permitted)|not permitted to relay"
    r"|auth(?:entication)? (?:is )?(?:required|needed|failed)|must (?:first )?authenticate"
    r"|not authenticated|\bsender (?:address|domain|verify)|\bmail from\b",
    re.IGNORECASE,
)
# Mailbox-level statuses about the reader's address (RFC 3463): bad mailbox, bad system,
# bad mailbox syntax, mailbox disabled. Read before any text, whatever words follow them
# (5.1.7 / 5.1.8 are about the sender: see `_SENDER_STATUSES`).
_READER_STATUSES = frozenset({"5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.2.1"})
# Replies about this message or our reputation, not the address: policy, blocks, spam.
_POLICY_TEXT = re.compile(
    r"polic(?:y|ies)|block|black ?list|spam|reputation|\bspf\b|dmarc|dkim", re.IGNORECASE
)
# 530 authentication required, 534 mechanism too weak, 535 credentials invalid, 538
# encryption required for the login (RFC 4954).
_SENDER_CODES = frozenset({530, 534, 535, 538})
# 5.1.7 / 5.1.8: bad sender mailbox / sender's system (RFC 3463); 5.7.8, 5.7.9, 5.7.11,
# 5.7.0 with a login text: authentication (RFC 4954).
_SENDER_STATUSES = frozenset({"5.1.7", "5.1.8", "5.7.8", "5.7.9", "5.7.11"})


def enhanced_code(message: str) -> str | None:
    """The RFC 3463 status at the start of a reply text ("5.1.1"), if any."""
    match = _ENHANCED.match(message)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: sent, temporary (retry later) or permanent (never retry).

    `code` is the SMTP reply code when there was one (None for timeouts, dropped connections
    and file writes); `enhanced` the RFC 3463 code at the start of `message` (read from it);
    `stage` says which step answered, so that a 5xx at MAIL FROM (a problem with us) is not
    mistaken for a bad recipient address.
    """

    status: Status
    code: int | None
    message: str
    stage: Stage = ""
    enhanced: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.enhanced is None:
            object.__setattr__(self, "enhanced", enhanced_code(self.message))

    @classmethod
    def from_reply(cls, code: int, message: str, stage: Stage = "") -> Outcome:
        """2xx sent, 5xx permanent, anything else (4xx, odd codes) temporary."""
        if 200 <= code < 300:
            status: Status = "sent"
        elif 500 <= code < 600:
            status = "permanent"
        else:
            status = "temporary"
        return cls(status, code, message.strip(), stage)

    @property
    def throttled(self) -> bool:
        """The server asks us to slow down (421, or 4.7.28 / 4.3.0 / 4.2.1)."""
        return self.code == 421 or (
            self.status == "temporary" and self.enhanced in THROTTLE_STATUSES
        )

    @property
    def blame(self) -> Blame | None:
        """Whose problem a permanent failure is (None unless permanent).

        `sender`: a 5xx at MAIL FROM, a login or relay refusal (530, 535, 5.7.8, "relay not
        permitted", "relaying denied", ...) or a refused sender address (5.1.7, 5.1.8):
        our configuration, never the reader's. `reader`: a server's reply about the address
        (5.1.0 to 5.1.3 and 5.2.1 whatever words follow them, other 5.1.x, or a bare 5xx at
        RCPT without a policy or relay text). Anything else
        (policy and content refusals 5.7.x, a full mailbox 5.2.2, a refusal made here
        without a server's reply) is `message`: this message failed, the address is fine.
        """
        if self.status != "permanent":
            return None
        text, enhanced = self.message, self.enhanced
        if self.code is None:  # refused here, before any server answered: nobody's fault
            return "message"
        if self.stage == "MAIL" or self.code in _SENDER_CODES or enhanced in _SENDER_STATUSES:
            return "sender"
        if enhanced in _READER_STATUSES:  # the server named the address: its words don't matter
            return "reader"
        if _SENDER_TEXT.search(text):
            return "sender"
        if (enhanced or "").startswith("5.7.") or _POLICY_TEXT.search(text):
            return "message"
        if enhanced is not None:
            return "reader" if enhanced.startswith("5.1.") or enhanced == "5.2.1" else "message"
        return "reader" if self.stage == "RCPT" else "message"

    @property
    def hard_bounce(self) -> bool:
        """Permanent *and* about the address (suppress it): see `blame`."""
        return self.blame == "reader"

    @property
    def retryable(self) -> bool:
        """Worth sending again later: a temporary failure, or a permanent one on our side
        (a relay or login refusal goes through once the configuration is fixed)."""
        return self.status == "temporary" or self.blame == "sender"

    @property
    def stalled(self) -> bool:
        """The server did not really answer: a timeout, a dropped or refused connection, or a
        request to slow down (421, 4.7.28 ...): what the breaker counts as a stall."""
        return self.status == "temporary" and (self.code is None or self.throttled)


@dataclass(frozen=True, slots=True)
class Envelope:
    """One SMTP transaction: return path (MAIL FROM), one recipient (RCPT TO), message bytes.

    `eight_bit`: the message has 8bit parts (sent with BODY=8BITMIME; only to a sender whose
    `eight_bit` is true). `wire`: the message in its SMTP form already (CRLF line ends, lines
    that start with a dot doubled), written as it is; None: the SMTP client makes it.
    """

    sender: str
    recipient: str
    data: bytes
    eight_bit: bool = False
    wire: bytes | None = None


class Sender(Protocol):
    """Delivers messages; `send` never raises for a refused message, it returns an Outcome.

    Use as `async with sender: outcome = await sender.send(envelope)`; `send` may be called
    from many tasks at once. `open` raises a DigestError when sending is impossible, before
    anything could be marked sent. `eight_bit`: messages may carry 8bit parts (the server
    offers 8BITMIME).
    """

    @property
    def eight_bit(self) -> bool: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, envelope: Envelope) -> Outcome: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...


class SenderLifecycle:
    """`async with` support for senders: open on enter, close on exit; 7bit by default."""

    eight_bit = False

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()
