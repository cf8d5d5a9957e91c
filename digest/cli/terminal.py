"""Untrusted text to the terminal: escape sequences and controls removed, Rich markup escaped."""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

from digest.text.controls import clean_line

# Whole escape sequences, so that no remnant ("[2J", "0;title") is left behind by removing
# the ESC alone: CSI (ESC [ or the C1 CSI) with its parameters and final byte; OSC, DCS,
# SOS, PM and APC strings up to BEL or the string terminator (ESC \ or C1 ST) — or to the
# end, when a hostile value never terminates them; any other two-byte ESC sequence.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x7e]?"
)


def plain(value: object) -> str:
    """Text from the database, a feed, a CSV file or a user, safe to print as it is.

    One line: terminal escape sequences, C0/C1 controls and bidi overrides/isolates go (a
    name cannot clear the screen, retitle the window or reverse what follows it); line
    breaks and tabs become spaces; lists and mappings show their items. For `typer.echo`
    and `console.print(..., markup=False)`."""
    return clean_line(_SEQUENCES.sub("", _flat(value)))


def _flat(value: object) -> str:
    # A list or mapping reads as its items: its repr would show a control as "\x1b[2J".
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_flat(item) for item in value)
    return str(value)


def markup(value: object) -> str:
    """`plain(value)` escaped for Rich markup: for values put inside a markup string
    (`console.print(f"[bold]{markup(name)}[/bold]")`), so `[/bold]` in a name is shown as
    written instead of closing a tag (or crashing on a tag it never opened)."""
    return escape(plain(value))


def cell(value: object) -> Text:
    """`plain(value)` as a Rich Text: a table cell or title that is never read as markup."""
    return Text(plain(value))
