"""Ranking without a database: order, window bounds, the editors' pins and excludes, and
articles a reader already got."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from digest.catalog.views import ArticleView, TopicView
from digest.editions.controls import EditionControls
from digest.selection.ranking import Candidate, in_order, rank, steer, unsent

END = datetime(2026, 11, 28, 4, tzinfo=UTC)
START = END - timedelta(days=1)
POLITICS, ECONOMY, SPORTS = 1, 2, 3
TOPICS = {
    POLITICS: TopicView("politics", "سياسة"),
    ECONOMY: TopicView("economy", "اقتصاد"),
    SPORTS: TopicView("sports", "رياضة"),
}


def _candidate(
    article_id: int, hours_ago: float, *topic_ids: int, published_hours_ago: float | None = None
) -> Candidate:
    ingested = END - timedelta(hours=hours_ago)
    recency = (
        ingested if published_hours_ago is None else END - timedelta(hours=published_hours_ago)
    )
    view = ArticleView(article_id, f"خبر {article_id}", f"https://news.example.org/{article_id}")
    return Candidate(article_id, ingested, recency, frozenset(topic_ids), view)


def _ids(ranked: list[Candidate]) -> list[int]:
    return [c.id for c in ranked]


def _controls(
    pinned: tuple[int, ...] = (),
    top: frozenset[int] = frozenset(),
    excluded: frozenset[int] = frozenset(),
) -> EditionControls:
    return EditionControls(1, date(2026, 11, 28), pinned=pinned, top=top, excluded=excluded)


def test_newest_first_then_the_readers_topic_order() -> None:
    pool = [
        _candidate(1, 5, ECONOMY),
        _candidate(2, 1, ECONOMY),
        _candidate(3, 3, POLITICS),
        _candidate(4, 3, ECONOMY),  # as recent as 3: the reader's first topic goes first
    ]
    assert _ids(rank(pool, (POLITICS, ECONOMY), START, END)) == [2, 3, 4, 1]
    assert _ids(rank(pool, (ECONOMY, POLITICS), START, END)) == [2, 4, 3, 1]


def test_a_feed_date_newer_than_ingestion_counts_as_ingestion() -> None:
    # The recency the reading side works out: the earlier of publication and ingestion.
    pool = [_candidate(1, 2, ECONOMY, published_hours_ago=10), _candidate(2, 5, ECONOMY)]
    assert _ids(rank(pool, (ECONOMY,), START, END)) == [2, 1]


def test_only_the_readers_topics_inside_the_window() -> None:
    pool = [
        _candidate(1, 0, ECONOMY),  # at the end: in
        _candidate(2, 24, ECONOMY),  # at the start: out (the previous digest had it)
        _candidate(3, -0.1, ECONOMY),  # after the end: out
        _candidate(4, 2, SPORTS),  # not the reader's topic
        _candidate(5, 2, SPORTS, ECONOMY),  # one of the reader's topics is enough
    ]
    assert _ids(rank(pool, (ECONOMY, POLITICS), START, END)) == [1, 5]


def test_pins_lead_in_pin_order_and_excluded_articles_are_out() -> None:
    pool = [_candidate(1, 1, ECONOMY), _candidate(2, 2, ECONOMY), _candidate(3, 3, ECONOMY)]
    controls = _controls(pinned=(3, 2), excluded=frozenset({1}))
    ranked = rank(pool, (ECONOMY,), START, END)
    by_id = {c.id: c for c in pool}
    assert _ids(steer(ranked, by_id, (ECONOMY,), controls)) == [3, 2]


def test_a_top_story_reaches_every_reader_and_a_plain_pin_only_its_topics() -> None:
    old_sports = _candidate(9, 40, SPORTS)  # pinned from before the window
    pool = [_candidate(1, 1, ECONOMY), old_sports]
    by_id = {c.id: c for c in pool}
    ranked = rank(pool, (ECONOMY,), START, END)
    top = _controls(pinned=(9,), top=frozenset({9}))
    assert _ids(steer(ranked, by_id, (ECONOMY,), top)) == [9, 1]
    pinned = _controls(pinned=(9,))
    assert _ids(steer(ranked, by_id, (ECONOMY,), pinned)) == [1]  # sports is not theirs
    assert _ids(steer(rank(pool, (SPORTS,), START, END), by_id, (SPORTS,), pinned)) == [9]


def test_an_excluded_pin_does_not_lead() -> None:
    pool = [_candidate(1, 1, ECONOMY), _candidate(2, 2, ECONOMY)]
    controls = _controls(pinned=(2,), top=frozenset({2}), excluded=frozenset({2}))
    ranked = rank(pool, (ECONOMY,), START, END)
    assert _ids(steer(ranked, {c.id: c for c in pool}, (ECONOMY,), controls)) == [1]


def test_articles_already_sent_are_left_out_before_the_cap() -> None:
    ranked = [_candidate(i, i, ECONOMY) for i in range(1, 6)]
    assert _ids(unsent(ranked, None, 3)) == [1, 2, 3]
    assert _ids(unsent(ranked, {1, 3}, 3)) == [2, 4, 5]
    assert _ids(unsent(ranked, {1, 2, 3, 4, 5}, 3)) == []


def test_an_article_shows_the_readers_topics_first() -> None:
    both = _candidate(1, 1, POLITICS, ECONOMY, SPORTS)
    assert in_order(both, (ECONOMY, POLITICS), TOPICS).topics == ("economy", "politics", "sports")
    assert in_order(both, (POLITICS,), TOPICS).topics == ("politics", "economy", "sports")
    assert in_order(both, (POLITICS,), TOPICS).title == "خبر 1"


def test_one_story_carried_by_two_feeds_is_in_a_digest_once() -> None:
    """Two feeds' items with one URL are two articles (each its feed's), one story to read."""
    first, twin, other = _candidate(1, 1, ECONOMY), _candidate(2, 2, ECONOMY), _candidate(3, 3)
    twin = Candidate(2, twin.ingested_at, twin.recency, twin.topic_ids, first.view)
    assert _ids(unsent([first, twin, other], None, 3)) == [1, 3]
    assert _ids(unsent([first, twin, other], {1}, 3)) == [2, 3]
