"""Topics and articles as a digest shows them: plain, frozen data for selection and rendering."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# Characters of Arabic body text read in a minute (about 200 words of 5-6 letters).
CHARS_PER_MINUTE = 1100


@dataclass(frozen=True)
class TopicView:
    slug: str
    name: str
    name_en: str | None = None

    def label(self, locale: str) -> str:
        return self.name if locale == "ar" else (self.name_en or self.name)


@dataclass(frozen=True)
class ArticleView:
    """An article as an email shows it; `topics` are slugs, the reader's first topic first."""

    id: int
    title: str
    url: str
    summary: str = ""
    image_url: str | None = None
    published_at: datetime | None = None
    topics: tuple[str, ...] = ()
    reading_minutes: int | None = None
    body_chars: int = 0

    @property
    def minutes(self) -> int | None:
        """Reading time: given, or estimated from the body length (None: unknown)."""
        if self.reading_minutes:
            return self.reading_minutes
        if self.body_chars > 0:
            return max(1, math.ceil(self.body_chars / CHARS_PER_MINUTE))
        return None
