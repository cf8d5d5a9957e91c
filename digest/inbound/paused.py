"""Whether an edition is paused by the bounce brake, read from its history (`editor_action`).

The brake (digest/inbound/brake.py) holds an edition with `hold_sending(..., actor=ACTOR,
detail=...)`. The edition is paused by the brake while it is held and its latest hold is the
brake's: an editor's release ends it, and an editor's own hold afterwards is theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from digest.db.models import EditionStatus, EditorAction
from digest.inbound.brake import ACTOR as BRAKE_ACTOR
from digest.text.controls import clean_line

HOLD = "hold"


@dataclass(frozen=True)
class BrakePause:
    """The brake's hold of an edition: why (its detail line) and when."""

    edition_id: int
    detail: str
    at: datetime

    def line(self) -> str:
        """What `digest editions show` prints."""
        return clean_line(
            f"paused by the bounce brake: {self.detail or 'bounce or complaint rate too high'}; "
            f"release with digest editions release {self.edition_id}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "at": self.at.isoformat(timespec="seconds"),
            "release": f"digest editions release {self.edition_id}",
        }


def brake_pause(edition_id: int, status: str, history: Sequence[EditorAction]) -> BrakePause | None:
    """The brake's pause of a `status` edition with `history` (oldest first), or None."""
    if status != EditionStatus.HELD:
        return None
    holds = [a for a in history if a.action == HOLD]
    if not holds or holds[-1].actor != BRAKE_ACTOR:
        return None
    return BrakePause(edition_id, clean_line(holds[-1].detail).strip(), holds[-1].at)
