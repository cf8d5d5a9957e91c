"""Where things are: the repository root and the folder for browser screenshots."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# Screenshots of the browser tests, for a person to look at.
ARTIFACTS = ROOT / "tests" / "artifacts"
