"""An edition's editor controls as plain data: what selection and rendering apply to it.

Loaded once per edition (digest/editions/workflow.py) and passed down to `select.segments_for` and
the dispatcher, so that sending, preview and the web preview steer digests the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.config import SUBJECT_PLACEHOLDERS
from digest.db.models import EditionStatus
from digest.errors import InvalidInput
from digest.text.placeholders import placeholder_problems

SUBJECT_CHARS = 150
NOTE_CHARS = 600
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# Tags, comments and character references: a note is plain text, shown escaped.
_MARKUP = re.compile(r"<\s*[/!?A-Za-z]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


class Refused(InvalidInput):
    """An editor's change that cannot be made; nothing was changed. `code` names the reason
    (pages show it in the reader's language), the message says it in full."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class EditionControls:
    """What editors decided for one edition (a list's issue of one local date)."""

    edition_id: int
    local_date: date
    status: str = EditionStatus.DRAFT
    pinned: tuple[int, ...] = ()  # the lead, in order
    top: frozenset[int] = frozenset()  # pinned and sent to every subscriber of the list
    excluded: frozenset[int] = frozenset()
    topic_order: tuple[int, ...] = ()
    subjects: Mapping[str, str] = field(default_factory=dict)  # locale -> subject template
    note: str = ""
    sendable_since: datetime | None = None  # approved or released at: lateness counts from here

    def blocks(self, needs_approval: bool) -> bool:
        """Nothing of this edition may be planned now: it is held, or awaits approval."""
        return self.status == EditionStatus.HELD or (
            needs_approval and self.status == EditionStatus.DRAFT
        )

    def order_topics(self, topic_ids: Sequence[int]) -> tuple[int, ...]:
        """A subscriber's topics with the edition's order first, then their own order."""
        if not self.topic_order:
            return tuple(topic_ids)
        chosen = set(topic_ids)
        first = tuple(t for t in self.topic_order if t in chosen)
        return first + tuple(t for t in topic_ids if t not in first)

    def lead_count(self, article_ids: Sequence[int]) -> int:
        """How many of `article_ids`, from the start, are pinned (they form the lead)."""
        pinned = set(self.pinned)
        count = 0
        for article_id in article_ids:
            if article_id not in pinned:
                break
            count += 1
        return count

    def subject_for(self, locale: str) -> str | None:
        return self.subjects.get(locale) or None


@dataclass(frozen=True)
class Editorial:
    """The controls of a list's editions by local date, and whether they need approval."""

    needs_approval: bool = False
    editions: Mapping[date, EditionControls] = field(default_factory=dict)

    def controls(self, day: date) -> EditionControls | None:
        return self.editions.get(day)

    def blocked(self, day: date) -> bool:
        """Subscribers due for `day` wait: the edition is held, or still a draft that needs
        approval (an edition not created yet is a draft)."""
        found = self.editions.get(day)
        return self.needs_approval if found is None else found.blocks(self.needs_approval)

    def sendable_since(self, day: date) -> datetime | None:
        found = self.editions.get(day)
        return None if found is None else found.sendable_since

    @property
    def pinned_ids(self) -> set[int]:
        return {a for c in self.editions.values() for a in c.pinned}


def clean_subject(text: str) -> str:
    """An editor's subject template, checked: one line, short, known placeholders only."""
    if "\n" in text or "\r" in text:
        raise Refused("subject_lines", "a subject is one line: remove the line breaks")
    subject = " ".join(text.split())
    if _CONTROL.search(subject):
        raise Refused("subject_control", "the subject holds control characters: type it again")
    if len(subject) > SUBJECT_CHARS:
        raise Refused(
            "subject_long",
            f"the subject has {len(subject)} characters; at most {SUBJECT_CHARS} "
            "(inboxes show about 60)",
        )
    problems = placeholder_problems(subject, SUBJECT_PLACEHOLDERS)
    if problems:
        raise Refused("subject_placeholder", "the subject cannot be used: " + "; ".join(problems))
    return subject


def clean_note(text: str) -> str:
    """An editor's note, checked: plain text (no markup), short; lines kept, blanks dropped."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    note = "\n".join(line for line in lines if line)
    if _MARKUP.search(note):
        raise Refused(
            "note_markup",
            "the note is plain text: remove the markup (tags like <b> or entities like &amp;)",
        )
    if _CONTROL.search(note):
        raise Refused("note_control", "the note holds control characters: type it again")
    if len(note) > NOTE_CHARS:
        raise Refused("note_long", f"the note has {len(note)} characters; at most {NOTE_CHARS}")
    return note
