"""Ranking: which candidate articles a group of readers gets, in which order (no SQL).

Plain functions over plain data: the candidates `queries.candidates` read, a group's topic
order and window, and the editors' controls of the edition.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.catalog.views import ArticleView, TopicView
from digest.editions.controls import EditionControls


@dataclass(frozen=True)
class Candidate:
    """An article that may go into a digest: when it came in, how recent it is, its topics."""

    id: int
    ingested_at: datetime
    recency: datetime  # the feed's date, unless it claims to be newer than our ingestion
    topic_ids: frozenset[int]
    view: ArticleView


def rank(
    candidates: Sequence[Candidate], topic_ids: tuple[int, ...], start: datetime, end: datetime
) -> list[Candidate]:
    """Articles of these topics ingested in (start, end]: newest first, then by topic order."""
    position = {t: i for i, t in enumerate(topic_ids)}
    wanted = frozenset(topic_ids)
    matching = [
        c for c in candidates if start < c.ingested_at <= end and not c.topic_ids.isdisjoint(wanted)
    ]
    matching.sort(
        key=lambda c: (
            -c.recency.timestamp(),
            min(position[t] for t in c.topic_ids if t in position),
            -c.id,
        )
    )
    return matching


def steer(
    ranked: Sequence[Candidate],
    by_id: Mapping[int, Candidate],
    topic_ids: tuple[int, ...],
    controls: EditionControls,
) -> list[Candidate]:
    """The editors' ranking: pinned articles first, in pin order, for subscribers of one of
    their topics (top stories for everyone, whatever their window); excluded ones out."""
    wanted = frozenset(topic_ids)
    lead = [
        c
        for a in controls.pinned
        if (c := by_id.get(a)) is not None
        and a not in controls.excluded
        and (a in controls.top or not c.topic_ids.isdisjoint(wanted))
    ]
    first = {c.id for c in lead}
    return lead + [c for c in ranked if c.id not in first and c.id not in controls.excluded]


def unsent(ranked: Sequence[Candidate], already: set[int] | None, limit: int) -> list[Candidate]:
    """The first `limit` of `ranked` that are not among the reader's `already` sent ones,
    each story once: two feeds carrying the same page are two articles (an article is
    its feed's item) but one story in a digest, the higher-ranked one."""
    chosen: list[Candidate] = []
    urls: set[str] = set()
    for candidate in ranked:
        if len(chosen) == limit:
            break
        if (already and candidate.id in already) or candidate.view.url in urls:
            continue
        urls.add(candidate.view.url)
        chosen.append(candidate)
    return chosen


def in_order(
    candidate: Candidate, topic_ids: tuple[int, ...], topics: Mapping[int, TopicView]
) -> ArticleView:
    """The article with its topics in the subscriber's order, so it lands in their first one."""
    ordered = [topics[t].slug for t in topic_ids if t in candidate.topic_ids and t in topics]
    rest = [topics[t].slug for t in sorted(candidate.topic_ids) if t not in topic_ids]
    return dataclasses.replace(candidate.view, topics=tuple(ordered + rest))
