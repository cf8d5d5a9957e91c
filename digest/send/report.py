"""What a sending run did: its counts, for `digest send`, the scheduler and workers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from digest.db.models import DeliveryStatus
from digest.send.plan import ListPlan
from digest.send.record import Attempt

logger = logging.getLogger("digest.send.dispatcher")


@dataclass
class DispatchReport:
    due: int = 0
    queued: int = 0
    skipped_empty: int = 0
    already_planned: int = 0
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    skipped_unsubscribed: int = 0
    segments: int = 0
    late: int = 0  # past the scheduler's lateness limit: skipped for that day
    waiting: int = 0  # due, but their edition is held or awaits an editor's approval

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def add_plan(self, planned: ListPlan) -> None:
        """Count what planning the list did."""
        self.due += planned.due
        self.queued += planned.queued
        self.skipped_empty += planned.skipped_empty
        self.already_planned += planned.already_planned
        self.segments += planned.segments
        self.late += planned.skipped_late
        self.waiting += planned.waiting

    def add_recorded(self, recorded: Sequence[tuple[Attempt, str]]) -> None:
        """Count the outcomes recorded (by their delivery's new status)."""
        for attempt, status in recorded:
            if status == DeliveryStatus.SENT:
                self.sent += 1
            elif status == DeliveryStatus.FAILED_TEMPORARY:
                self.temporary += 1
            else:
                self.permanent += 1
                outcome = attempt.outcome
                logger.warning(
                    "%s failed for good: %s %s",
                    attempt.claimed.email,
                    outcome.code,
                    outcome.message,
                )
