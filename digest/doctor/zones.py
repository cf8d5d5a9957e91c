"""Time zone data: each digest goes out at a subscriber's local hour, computed with zoneinfo,
which needs the system's tz database or the `tzdata` package."""

from __future__ import annotations

import importlib.util
import zoneinfo
from collections.abc import Iterable
from pathlib import Path

from digest.config import Settings
from digest.doctor.report import Check

NAME = "time zones"
# Zones any installation can be asked for (the defaults, and the commonest elsewhere).
WELL_KNOWN = ("UTC", "Asia/Riyadh", "Africa/Cairo", "Asia/Dubai", "Europe/London")
FIX = "install the time zone data: `apt-get install tzdata` or `pip install tzdata`"


def zones_check(settings: Settings, chosen: Iterable[str] = ()) -> Check:
    """Every zone the settings, the subscribers (`chosen`) and a few well-known ones name
    loads; the detail says where the data comes from."""
    wanted = sorted(
        {*WELL_KNOWN, settings.digest.timezone, settings.scheduler.timezone, *chosen} - {""}
    )
    missing = [zone for zone in wanted if not _loads(zone)]
    source = _source()
    if source is None:
        return Check.fail(NAME, "no time zone data: no system tz database, no tzdata", FIX)
    if missing:
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        return Check.fail(
            NAME,
            f"{len(missing)} of {len(wanted)} zones do not load ({shown}); data from {source}",
            FIX + " (a newer version knows newer zones)",
        )
    return Check.ok(NAME, f"{len(wanted)} zones load; data from {source}")


def _loads(zone: str) -> bool:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _source() -> str | None:
    """Where zoneinfo reads from: the system's folders first, then the tzdata package."""
    system = [path for path in zoneinfo.TZPATH if _has_utc(path)]
    package = importlib.util.find_spec("tzdata") is not None
    parts = [*(f"system {path}" for path in system[:1]), *(["tzdata package"] if package else [])]
    return " and ".join(parts) or None


def _has_utc(folder: str) -> bool:
    return (Path(folder) / "UTC").is_file()
