"""Text from outside made storable: NUL, C0/C1 controls and bidi overrides/isolates removed.

Feeds, forms, CSV files and names come from people we do not trust. A NUL is refused by
PostgreSQL (and truncates C strings elsewhere); the bidi embedding, override and isolate
controls (U+202A–U+202E, U+2066–U+2069) let a name display as something it is not
(«gnp.exe» read as «exe.png») and leak their direction into the text around them. They are
removed at the door, so that nothing stored, rendered or printed carries them.
"""

from __future__ import annotations

import re

# C0 controls except tab, line feed and carriage return; DEL and the C1 block; the bidi
# embeddings/overrides and isolates. RLM/LRM/ALM (U+200E, U+200F, U+061C) stay: they are
# marks, not controls that change the order of what follows.
# Lone surrogates (bytes that were not UTF-8, decoded with "surrogateescape": SMTP commands,
# argv, the environment) cannot be encoded, so no database or file takes them: each becomes
# U+FFFD, the replacement character.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# For one-line values (names, titles, subjects): line breaks and tabs become spaces too.
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: str) -> str:
    """`value` without NUL, control characters (tab and line breaks kept) or bidi controls."""
    return _UNSAFE.sub(_replaced_or_nothing, value)


def clean_line(value: str) -> str:
    """A one-line value: controls and bidi controls removed, line breaks and tabs to spaces."""
    return _UNSAFE_LINE.sub(_space_or_nothing, value).strip()


def control_problem(value: str) -> str | None:
    """None for a one-line value free of controls (tab allowed), else which one it holds:
    for values that must be refused rather than cleaned (settings that go into headers)."""
    found = _UNSAFE_LINE.search(value.replace("\t", " "))
    return None if found is None else f"holds a control character (U+{ord(found.group()):04X})"


def _replaced_or_nothing(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""


def _space_or_nothing(match: re.Match[str]) -> str:
    if match.group() in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029":
        return " "
    return _replaced_or_nothing(match)
