"""Debian's chromium for the browser tests: where it is and how it is started."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; never a downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_missing() -> str | None:
    """Why chromium cannot run here, or None when it can."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None
