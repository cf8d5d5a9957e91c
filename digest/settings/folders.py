"""Settings that name a folder on this machine: checked to exist when the settings load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from digest.settings.fields import valid


def folder_problem(value: str) -> str | None:
    """Why `value` cannot be used as a folder (missing, not a folder), or None."""
    path = Path(value).expanduser()
    if not path.exists():
        return f"folder {value!r} does not exist (relative paths start at the working folder)"
    if not path.is_dir():
        return f"{value!r} is not a folder"
    return None


# A folder that must exist when set; empty means "not set" (the built-in default is used).
OptionalFolder = Annotated[str, valid(folder_problem, optional=True)]
