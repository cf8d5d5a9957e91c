"""Sending: outcomes as values, the Sender protocol, the .eml directory sender, retry timing.

The SMTP pool lives in `digest.send.smtp` (`SmtpSender`); everything here is shared by every
sender and by the outbox that schedules retries.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

from digest.config import SmtpSettings
from digest.errors import InvalidInput

Status = Literal["sent", "temporary", "permanent"]
Stage = Literal["", "connect", "MAIL", "RCPT", "DATA", "file"]

# Enhanced status codes (RFC 3463) that mean "you are sending too fast": 4.7.28 (Gmail rate
# limit), 4.3.0 (generic, used for throttling by Yahoo and others), 4.2.1 (try again later).
THROTTLE_STATUSES = frozenset({"4.7.28", "4.3.0", "4.2.1"})
_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*<?([^>\r\n]+)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: sent, temporary (retry later) or permanent (never retry).

    `code` is the SMTP reply code when there was one (None for timeouts, dropped connections
    and file writes); `stage` says which step answered, so that a 5xx at MAIL FROM (a problem
    with us) is not mistaken for a bad recipient address.
    """

    status: Status
    code: int | None
    message: str
    stage: Stage = ""

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
    def enhanced_status(self) -> str | None:
        """The RFC 3463 status at the start of the reply text ("5.1.1"), if any."""
        match = _ENHANCED.match(self.message)
        return match.group(1) if match else None

    @property
    def throttled(self) -> bool:
        """The server asks us to slow down (421, or 4.7.28 / 4.3.0 / 4.2.1)."""
        return self.code == 421 or (
            self.status == "temporary" and self.enhanced_status in THROTTLE_STATUSES
        )

    @property
    def hard_bounce(self) -> bool:
        """Permanent *and* about the address (suppress it): 5.1.x / 5.2.1, or a bare 5xx at RCPT.

        Policy and content refusals (5.7.x), a full mailbox (5.2.2) or a refused MAIL FROM
        are permanent for this message but say nothing bad about the address.
        """
        if self.status != "permanent":
            return False
        enhanced = self.enhanced_status
        if enhanced is not None:
            return enhanced.startswith("5.1.") or enhanced == "5.2.1"
        return self.stage == "RCPT"


@dataclass(frozen=True, slots=True)
class Envelope:
    """One SMTP transaction: return path (MAIL FROM), one recipient (RCPT TO), message bytes."""

    sender: str
    recipient: str
    data: bytes


class Sender(Protocol):
    """Delivers messages; `send` never raises for a refused message, it returns an Outcome.

    Use as `async with sender: outcome = await sender.send(envelope)`; `send` may be called
    from many tasks at once. `open` raises a DigestError when sending is impossible, before
    anything could be marked sent.
    """

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
    """`async with` support for senders: open on enter, close on exit."""

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


class FileSender(SenderLifecycle):
    """Writes every message as `<message-id>.eml` in `directory` (`digest send --to-dir`).

    The name comes from the Message-ID (safe characters only) or, without one, a counter;
    each file is written whole or not at all. `written` lists the files of this session.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.written: list[Path] = []
        self._counter = 0

    async def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(
                f"cannot create the output directory {self.directory}: {exc.strerror}"
            ) from None

    async def close(self) -> None:
        return None

    async def send(self, envelope: Envelope) -> Outcome:
        path = self.directory / self._name(envelope.data)
        partial = path.with_name(path.name + ".part")
        try:
            partial.write_bytes(envelope.data)
            os.replace(partial, path)
        except OSError as exc:
            return Outcome("temporary", None, f"cannot write {path}: {exc.strerror}", "file")
        self.written.append(path)
        return Outcome("sent", None, f"written to {path}", "file")

    def _name(self, data: bytes) -> str:
        end = data.find(b"\r\n\r\n")
        head = data[: end if end >= 0 else data.find(b"\n\n")]
        match = _MESSAGE_ID.search(head)
        if match:
            safe = _UNSAFE_NAME.sub("_", match.group(1).decode("ascii", "replace")).strip("._")
            if safe:
                return safe[:200] + ".eml"
        while True:
            self._counter += 1
            name = f"message-{self._counter:06d}.eml"
            if not (self.directory / name).exists():
                return name


def retry_delay(
    attempt: int,
    *,
    base: timedelta = timedelta(seconds=60),
    cap: timedelta = timedelta(minutes=30),
    rng: random.Random | None = None,
) -> timedelta:
    """How long to wait after `attempt` failed attempts (1, 2, ...): exponential, full jitter.

    Uniform in [0, min(cap, base * 2**(attempt-1))]; full jitter spreads the retries of a
    whole batch that failed together (a throttled relay) instead of sending them back at once.
    The default cap is RFC 5321 §4.5.4.1's 30 minutes between an MTA's retries.
    """
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2.0 ** min(max(attempt, 1) - 1, 60))
    return timedelta(seconds=(rng or random).uniform(0.0, ceiling))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a temporarily failed message is tried again, and when we give up on it."""

    base: timedelta = timedelta(seconds=60)
    cap: timedelta = timedelta(minutes=30)
    deadline: timedelta = timedelta(hours=6)

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> RetryPolicy:
        """smtp.retry_base_seconds and smtp.retry_deadline_hours."""
        return cls(
            base=timedelta(seconds=smtp.retry_base_seconds),
            deadline=timedelta(hours=smtp.retry_deadline_hours),
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """`retry_delay` with this policy's base and cap."""
        return retry_delay(attempt, base=self.base, cap=self.cap, rng=rng)

    def next_attempt(
        self,
        *,
        first_attempt: datetime,
        attempts: int,
        now: datetime,
        rng: random.Random | None = None,
    ) -> datetime | None:
        """When to try again after `attempts` failures; None once the deadline has passed.

        The last retry is moved forward to the deadline itself rather than skipped.
        """
        deadline = first_attempt + self.deadline
        if now >= deadline:
            return None
        return min(now + self.delay(attempts, rng), deadline)
