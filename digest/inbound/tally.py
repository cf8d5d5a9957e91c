"""What a run of `digest inbound process` or an IMAP poll did, message kind by kind, and the
loop that feeds streamed messages to the processor batch by batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from digest.db.models import InboundKind
from digest.inbound.process import Handled
from digest.inbound.sources import Item, Skipped, batches
from digest.inbound.verdicts import Received

Process = Callable[[Sequence[Received]], Sequence[Handled]]


@dataclass
class Tally:
    """Messages by kind (a duplicate, already stored once, counts only as a duplicate),
    and what was skipped: too large, or unreadable."""

    kinds: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    too_large: list[str] = field(default_factory=list)
    unreadable: list[Skipped] = field(default_factory=list)

    @property
    def messages(self) -> int:
        """Messages handed to the processor (duplicates included)."""
        return sum(self.kinds.values()) + self.duplicates

    @property
    def unknown(self) -> int:
        return self.kinds[InboundKind.UNKNOWN.value]

    def add(self, handled: Iterable[Handled]) -> None:
        for one in handled:
            if one.duplicate:
                self.duplicates += 1
            else:
                self.kinds[InboundKind(one.kind).value] += 1

    def skip(self, skipped: Skipped) -> None:
        if skipped.unreadable:
            self.unreadable.append(skipped)
        else:
            self.too_large.append(skipped.where)

    def lines(self) -> list[str]:
        """One line per kind seen (in InboundKind's order), then duplicates and skips."""
        lines = [f"processed {self.messages} message(s)"]
        lines += [
            f"{kind.value} {self.kinds[kind.value]}"
            for kind in InboundKind
            if self.kinds[kind.value]
        ]
        if self.duplicates:
            lines.append(f"duplicate {self.duplicates} (already processed: nothing done)")
        if self.too_large:
            lines.append(f"too_large {len(self.too_large)} (skipped)")
        if self.unreadable:
            lines.append(f"unreadable {len(self.unreadable)}")
        return lines

    def counts(self) -> dict[str, int]:
        """Flat counts, for a scheduler job's log line."""
        return {
            "messages": self.messages,
            **{
                kind.value: self.kinds[kind.value] for kind in InboundKind if self.kinds[kind.value]
            },
            "duplicates": self.duplicates,
            "too_large": len(self.too_large),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "kinds": {kind.value: self.kinds[kind.value] for kind in InboundKind},
            "duplicates": self.duplicates,
            "too_large": self.too_large,
            "unreadable": [{"path": s.where, "error": s.why} for s in self.unreadable],
        }


def feed(process: Process, items: Iterable[Item], tally: Tally) -> None:
    """Hand `items` to `process` in batches (one transaction each), counting into `tally`.

    What `process` raises (InboundUnavailable above all) stops the run there: the batches
    before it are stored, that one and the rest are not, and running again is safe (a
    message already stored is a duplicate, nothing more)."""
    for batch, skipped in batches(items):
        for skip in skipped:
            tally.skip(skip)
        if batch:
            tally.add(process(batch))
