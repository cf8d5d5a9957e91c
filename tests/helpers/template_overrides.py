"""A publisher's templates folder for tests: built-in templates copied in with a change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from digest.bundled import templates_dir


def builtin(name: str) -> str:
    """The text of the built-in template `name` (`email/digest.mjml.j2`)."""
    return (templates_dir() / name).read_text(encoding="utf-8")


def override(folder: Path, name: str, change: Callable[[str], str]) -> Path:
    """Write `name` into `folder` as the built-in with `change` applied; the file."""
    original = builtin(name)
    changed = change(original)
    assert changed != original, f"the change to {name} changed nothing"
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(changed, encoding="utf-8")
    return path


def replace(old: str, new: str) -> Callable[[str], str]:
    """A change: the first `old` becomes `new` (the built-in must hold `old`)."""

    def change(text: str) -> str:
        assert old in text, f"{old!r} is not in the built-in template any more"
        return text.replace(old, new, 1)

    return change


def insert_line(number: int, line: str) -> Callable[[str], str]:
    """A change: `line` inserted so that it becomes line `number` (1-based)."""

    def change(text: str) -> str:
        lines = text.splitlines()
        lines.insert(number - 1, line)
        return "\n".join(lines) + "\n"

    return change
