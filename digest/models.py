"""Tables of the engine: topics (and, in later stages, feeds, articles, editions, deliveries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from digest.clock import utcnow


class Topic(SQLModel, table=True):
    """A subject subscribers choose (سياسة، اقتصاد …); articles are tagged with topics."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
