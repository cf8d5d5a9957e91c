"""The run's breaker: stops a run whose failures say the relay is wrong, not the readers.

A relay that refuses to relay (a bare `550` at RCPT for everyone), `smtp.host` pointed at a
recipient's MX (`550 5.1.1` for every other domain), a server that stalls or throttles
forever: each fails many unrelated recipients in a row. The breaker watches the outcomes of
a run in a sliding window of the last `window` messages and, once `min_messages` are in,
trips when permanent refusals or stalls (timeouts, dropped connections, 421) reach their
share of it. The sending loop then stops, holds the editions and gives the rows back.

Nothing irreversible happens before the breaker is sure: a permanent failure that would be
recorded for good (`failed_permanent`, and a suppression if it is about the address) is
held back until it has left the window without the breaker tripping (every window that
held it was judged), or until the run ends untripped (`settle`: once per run, never per
batch, so that a batch boundary never records a failure the next batch would have judged).
A tripped breaker therefore leaves no suppression and no failed delivery behind: what it
held back is sent again after release. Held back means at most `window` rows wait in
`sending` (a worker renews their lease): a crash meanwhile sends them again, like any
message whose outcome was not committed. After a trip (`reset`), failures a fresh window
could not judge yet are not recorded at the end of the run either: they count with the
last trip (`settle` trips again) until `min_messages` outcomes have cleared the relay.

Runs shorter than `min_messages` are never judged (there is too little to tell a relay
from a few bad addresses): their failures are recorded as they come.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from digest.config import SmtpSettings
from digest.errors import DigestError
from digest.send.claimed import Claimed
from digest.send.outcome import Outcome
from digest.send.record import Attempt

Kind = Literal["ok", "permanent", "stall", "other"]
Tripping = Literal["permanent", "stall"]

_ADDRESSES = re.compile(r"<[^>]*>|[^\s<>]+@[^\s<>]+")
_REPLIES_SHOWN = 3


class BreakerTripped(DigestError):
    """A run stopped by its breaker: the message says why, what was held, what to check."""


@dataclass(frozen=True)
class BreakerOptions:
    """When a run stops (see the module docstring); built once from `[smtp]`."""

    window: int = 100
    min_messages: int = 20
    permanent_share: float = 0.5
    stall_share: float = 0.5
    where: str = "the SMTP server"  # host:port, for the message

    @classmethod
    def from_settings(cls, smtp: SmtpSettings) -> BreakerOptions:
        return cls(
            window=smtp.breaker_window,
            min_messages=min(smtp.breaker_min_messages, smtp.breaker_window),
            permanent_share=smtp.breaker_permanent_share,
            stall_share=smtp.breaker_stall_share,
            where=f"{smtp.host}:{smtp.port}",
        )


def kind_of(outcome: Outcome) -> Kind:
    """What the breaker counts an outcome as. A refusal made here, before any server
    answered (an address the relay cannot take), says nothing about the relay: `other`."""
    if outcome.status == "sent":
        return "ok"
    if outcome.status == "permanent" and outcome.code is not None:
        return "permanent"
    return "stall" if outcome.stalled else "other"


def reply_of(outcome: Outcome) -> str:
    """The reply without the addresses in it, so that the same refusal groups together."""
    text = " ".join(_ADDRESSES.sub("<…>", outcome.message).split())[:120]
    return f"{outcome.code} {text}".strip() if outcome.code is not None else text


@dataclass(frozen=True, slots=True)
class _Seen:
    kind: Kind
    reply: str
    edition_id: int
    ours: bool  # a relay or login refusal (blame: sender)


@dataclass(frozen=True)
class Trip:
    """Why the breaker tripped: the kind, its count among the outcomes seen, the commonest
    replies, whether the relay spoke of relaying or logins, and the editions concerned."""

    kind: Tripping
    count: int
    seen: int
    threshold: float
    replies: tuple[tuple[str, int], ...]
    relay_refused: bool
    editions: tuple[int, ...]

    def explain(self, where: str, *, given_back: int, held: Sequence[int]) -> str:
        """The operator's message: the share, the replies, what was kept, what to check."""
        replies = "; ".join(f"{reply!r} ×{n}" for reply, n in self.replies)
        what = "refused permanently" if self.kind == "permanent" else "timed out, were cut off "
        if self.kind == "stall":
            what += "or throttled (421)"
        setting = f"smtp.breaker_{self.kind}_share"
        editions = ", ".join(str(e) for e in held) or "none"
        release = " ".join(f"`digest editions release {e}`" for e in held)
        return (
            f"sending stopped by the breaker: {self.count} of the last {self.seen} messages "
            f"{what} ({self.count / self.seen:.0%}, threshold {self.threshold:.0%}, "
            f"{setting}). Replies: {replies}. Nothing was suppressed and nothing failed for "
            f"good: {given_back} deliveries went back to the queue. Edition(s) held: "
            f"{editions}. {self._hint(where)} Then release: {release or 'nothing to release'}."
        )

    def _hint(self, where: str) -> str:
        if self.kind == "stall":
            return (
                f"Check that {where} is up and what limits it sets: lower smtp.rate or "
                "smtp.connections, or raise smtp.timeout."
            )
        if self.relay_refused:
            return (
                f"{where} refuses to relay for us or wants a login: check smtp.username, "
                "DIGEST_SMTP__PASSWORD, smtp.starttls / smtp.tls, and that the relay accepts "
                "sender.from_address."
            )
        return (
            f"Refusals of this many unrelated readers come from the server, not the "
            f"addresses: check that smtp.host ({where}) is your relay and not a recipient's "
            "mail server, and that it accepts this message."
        )


class Breaker:
    """Counts a run's outcomes and holds back permanent failures until they are judged.

    `observe(attempt)` returns the attempts to record now; once `trip` is set, the caller
    stops taking messages, records what `observe` still returns, and gives back the rows
    of `held_back()`. `settle()` at the end of a run (untripped) returns what was held.
    One breaker lives as long as a run (or a worker, until it trips); it is used from one
    event loop only.
    """

    def __init__(self, options: BreakerOptions | None = None) -> None:
        self.options = options or BreakerOptions()
        self.trip: Trip | None = None
        self._window: deque[_Seen] = deque()
        self._counts: Counter[Kind] = Counter()
        self._held: deque[tuple[int, Attempt]] = deque()
        self._seen = 0
        self._after: Trip | None = None  # the last trip, until a fresh window clears the relay

    def observe(self, attempt: Attempt) -> list[Attempt]:
        """Count `attempt`'s outcome; the attempts now safe to record (it, or none if held
        back, plus held-back ones that have left the window)."""
        outcome = attempt.outcome
        kind = kind_of(outcome)
        self._seen += 1
        reply = reply_of(outcome) if kind in ("permanent", "stall") else ""  # only those shown
        self._window.append(
            _Seen(kind, reply, attempt.claimed.edition_id, outcome.blame == "sender")
        )
        self._counts[kind] += 1
        if len(self._window) > self.options.window:
            self._counts[self._window.popleft().kind] -= 1
        ready: list[Attempt] = []
        if outcome.status == "permanent" and not outcome.retryable:
            self._held.append((self._seen, attempt))
        else:
            ready.append(attempt)
        if self.trip is None:
            self.trip = self._judge()
        if self.trip is None and len(self._window) >= self._enough():
            self._after = None  # a full judgement since the last trip: the relay is fine
        if self.trip is None:
            oldest_judged = self._seen - self.options.window
            while self._held and self._held[0][0] <= oldest_judged:
                ready.append(self._held.popleft()[1])
        return ready

    def reset(self) -> None:
        """Start judging afresh (a worker, once a trip or a failed batch has been dealt with):
        what was held is dropped (its rows were given back, or stay `sending` until their
        lease runs out); a trip is remembered until a fresh window clears the relay."""
        if self.trip is not None:
            self._after = self.trip
        self.trip = None
        self._window.clear()
        self._counts.clear()
        self._held.clear()

    def settle(self) -> list[Attempt]:
        """The run ended untripped: what was held back is recorded after all.

        Unless the breaker tripped before (`reset`) and no full window has cleared the relay
        since: then the failures held count with that trip, which is set again (the caller
        gives their rows back with `held_back()`), and nothing is returned."""
        if self.trip is not None:
            return []
        if self._held and self._after is not None:
            self.trip = self._after
            return []
        ready = [attempt for _, attempt in self._held]
        self._held.clear()
        return ready

    def holding(self) -> list[Claimed]:
        """The rows of the failures held back now (their lease must not run out)."""
        return [attempt.claimed for _, attempt in self._held]

    def held_back(self) -> list[Attempt]:
        """After a trip: the permanent failures never recorded (their rows go back)."""
        held = [attempt for _, attempt in self._held]
        self._held.clear()
        return held

    def _enough(self) -> int:
        return min(self.options.min_messages, self.options.window)

    def _judge(self) -> Trip | None:
        seen = len(self._window)
        if seen < self._enough():
            return None
        kinds: tuple[tuple[Tripping, float], ...] = (
            ("permanent", self.options.permanent_share),
            ("stall", self.options.stall_share),
        )
        for kind, share in kinds:
            count = self._counts[kind]
            if count and count >= share * seen:
                return self._tripped(kind, count, seen, share)
        return None

    def _tripped(self, kind: Tripping, count: int, seen: int, share: float) -> Trip:
        mine = [s for s in self._window if s.kind == kind]
        replies = Counter(s.reply for s in mine).most_common(_REPLIES_SHOWN)
        return Trip(
            kind=kind,
            count=count,
            seen=seen,
            threshold=share,
            replies=tuple(replies),
            relay_refused=any(s.ours for s in mine),
            editions=tuple(sorted({s.edition_id for s in self._window})),
        )
