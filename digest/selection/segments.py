"""Segments: readers who get the same digest, and the one builder of a `Segment`.

`build_segment` is how every digest is put together from ids, whoever asks: planning
(`plan_segments`), the dispatcher and "view in browser" (from a delivery's stored ids),
and the previews. It applies the editors' controls of the edition: the lead, note, subject.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from digest.catalog.views import ArticleView, TopicView
from digest.editions.controls import EditionControls, Editorial
from digest.selection.ranking import Candidate, in_order, rank, steer, unsent
from digest.selection.window import Due
from subscribers.models import MailingList


@dataclass(frozen=True)
class Segment:
    """Subscribers who get the same digest: same articles, topic order, language, day.

    `articles` are ranked, best first: the size budget drops from the end. The editors'
    controls: the first `lead` articles (pinned) lead the digest above the topic sections,
    `note` (plain text) shows under the header, `subject` replaces the settings' template.
    """

    articles: tuple[ArticleView, ...]
    topics: tuple[TopicView, ...]
    date: date
    list_name: str
    locale: str = "ar"
    cadence: str = "daily"
    tracking: bool = True
    lead: int = 0
    note: str = ""
    subject: str | None = None


@dataclass(frozen=True)
class Issue:
    """What a segment is an issue of: the list, the local date, the language, whether links
    are tracked, and the editors' controls of that edition (None: no edition controls)."""

    list_name: str
    cadence: str
    day: date
    locale: str
    tracking: bool = True
    controls: EditionControls | None = None

    @classmethod
    def of(
        cls,
        mailing_list: MailingList,
        day: date,
        locale: str,
        *,
        tracking: bool = True,
        controls: EditionControls | None = None,
    ) -> Issue:
        return cls(mailing_list.name, mailing_list.cadence, day, locale, tracking, controls)


@dataclass
class PlannedSegment:
    """Recipients who get the same digest; it is compiled once for all of them."""

    key: str
    segment: Segment
    topic_ids: tuple[int, ...]
    article_ids: tuple[int, ...]
    recipients: list[Due] = field(default_factory=list)


def build_segment(
    issue: Issue,
    article_ids: Sequence[int],
    articles: Mapping[int, ArticleView],
    topic_ids: Iterable[int],
    topics: Mapping[int, TopicView],
) -> Segment:
    """The digest of these ranked article ids under these topics (in section order).

    The pinned articles at the head of `article_ids` form the lead. Articles missing from
    `articles` (deleted since) or with none of the topics (unless in the lead) are left out.
    """
    order = tuple(topics[t] for t in topic_ids if t in topics)
    slugs = {t.slug for t in order}
    controls = issue.controls
    ids = list(article_ids)
    leading = set(ids[: controls.lead_count(ids)]) if controls else set()
    chosen = tuple(
        articles[a]
        for a in ids
        if a in articles and (a in leading or slugs.intersection(articles[a].topics))
    )
    return Segment(
        articles=chosen,
        topics=order,
        date=issue.day,
        list_name=issue.list_name,
        locale=issue.locale,
        cadence=issue.cadence,
        tracking=issue.tracking,
        lead=sum(1 for a in chosen if a.id in leading),
        note=controls.note if controls else "",
        subject=controls.subject_for(issue.locale) if controls else None,
    )


def segment_key(
    topic_ids: Iterable[int], locale: str, day: date, article_ids: Iterable[int]
) -> str:
    """A short name for a digest's content: the same topics, language, date and articles."""
    topics, articles = ",".join(map(str, topic_ids)), ",".join(map(str, article_ids))
    raw = f"{topics}|{locale}|{day.isoformat()}|{articles}"
    return hashlib.blake2s(raw.encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Pool:
    """What `plan_segments` chooses from: the candidate articles, the ids of those already
    sent to each subscriber, every topic, and at most how many articles a digest holds."""

    candidates: Sequence[Candidate]
    sent: Mapping[int, set[int]]
    topics: Mapping[int, TopicView]
    max_articles: int


# Readers ranked alike: same topics (in order), window start, language and date.
_Group = tuple[tuple[int, ...], datetime, str, date]


def plan_segments(
    mailing_list: MailingList,
    due: Sequence[Due],
    pool: Pool,
    *,
    tracking: bool = True,
    editorial: Editorial | None = None,
) -> tuple[list[PlannedSegment], list[Due]]:
    """(segments, readers with nothing new): the articles each of `due` gets, ranked once
    per group of readers alike, grouped into segments of the same digest."""
    steering = editorial or Editorial()
    groups: dict[_Group, list[Due]] = defaultdict(list)
    for item in due:
        controls = steering.controls(item.local_date)
        topic_ids = controls.order_topics(item.topic_ids) if controls else item.topic_ids
        groups[(topic_ids, item.window_start, item.locale, item.local_date)].append(item)
    segments: dict[str, PlannedSegment] = {}
    empty: list[Due] = []
    by_id = {c.id: c for c in pool.candidates}
    for (topic_ids, start, locale, local_day), members in groups.items():
        controls = steering.controls(local_day)
        ranked = rank(pool.candidates, topic_ids, start, members[0].window_end)
        if controls is not None:
            ranked = steer(ranked, by_id, topic_ids, controls)
        issue = Issue.of(mailing_list, local_day, locale, tracking=tracking, controls=controls)
        # Members who had none of these articles yet all get the same digest: worked out once.
        shared: tuple[PlannedSegment | None] | None = None
        for member in members:
            already = pool.sent.get(member.subscriber_id)
            if shared is not None and not already:
                if shared[0] is None:
                    empty.append(member)
                else:
                    shared[0].recipients.append(member)
                continue
            planned = _planned(
                segments, issue, topic_ids, unsent(ranked, already, pool.max_articles), pool
            )
            if planned is None:
                empty.append(member)
            else:
                planned.recipients.append(member)
            shared = shared if already else (planned,)
    return list(segments.values()), empty


def _planned(
    segments: dict[str, PlannedSegment],
    issue: Issue,
    topic_ids: tuple[int, ...],
    chosen: Sequence[Candidate],
    pool: Pool,
) -> PlannedSegment | None:
    """The segment of `chosen` (made once per key), None when nothing is chosen."""
    if not chosen:
        return None
    article_ids = tuple(c.id for c in chosen)
    key = segment_key(topic_ids, issue.locale, issue.day, article_ids)
    planned = segments.get(key)
    if planned is None:
        views = {c.id: in_order(c, topic_ids, pool.topics) for c in chosen}
        segment = build_segment(issue, article_ids, views, topic_ids, pool.topics)
        planned = segments[key] = PlannedSegment(key, segment, topic_ids, article_ids)
    return planned
