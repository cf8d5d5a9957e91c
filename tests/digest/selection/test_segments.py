"""The one builder of a digest's segment: article order, sections, the editors' lead, note
and subject, and articles gone since."""

from __future__ import annotations

from datetime import date

from digest.catalog.views import ArticleView, TopicView
from digest.editions.controls import EditionControls
from digest.selection.segments import Issue, build_segment, segment_key

DAY = date(2026, 11, 28)
POLITICS, ECONOMY, SPORTS = 1, 2, 3
TOPICS = {
    POLITICS: TopicView("politics", "سياسة", "Politics"),
    ECONOMY: TopicView("economy", "اقتصاد", "Economy"),
    SPORTS: TopicView("sports", "رياضة", "Sports"),
}


def _article(article_id: int, *slugs: str) -> ArticleView:
    return ArticleView(
        article_id, f"خبر {article_id}", f"https://news.example.org/{article_id}", topics=slugs
    )


ARTICLES = {
    1: _article(1, "economy"),
    2: _article(2, "politics"),
    3: _article(3, "sports"),  # a top story from outside the reader's topics
    4: _article(4, "economy", "politics"),
}


def _issue(controls: EditionControls | None = None, locale: str = "ar") -> Issue:
    return Issue("النشرة اليومية", "daily", DAY, locale, tracking=False, controls=controls)


def test_articles_keep_their_ranked_order_and_topics_their_section_order() -> None:
    segment = build_segment(_issue(), [4, 1, 2], ARTICLES, [ECONOMY, POLITICS], TOPICS)
    assert [a.id for a in segment.articles] == [4, 1, 2]
    assert [t.slug for t in segment.topics] == ["economy", "politics"]
    assert (segment.date, segment.locale, segment.tracking) == (DAY, "ar", False)
    assert (segment.lead, segment.note, segment.subject) == (0, "", None)


def test_gone_articles_and_articles_of_other_topics_are_left_out() -> None:
    segment = build_segment(_issue(), [4, 99, 3, 1], ARTICLES, [ECONOMY], TOPICS)
    assert [a.id for a in segment.articles] == [4, 1]  # 99 deleted since, 3 is sports


def test_the_editors_lead_note_and_subject() -> None:
    controls = EditionControls(
        1, DAY, pinned=(3, 2), top=frozenset({3}), note="عدد خاص", subjects={"en": "Special"}
    )
    segment = build_segment(
        _issue(controls, "en"), [3, 2, 1], ARTICLES, [ECONOMY, POLITICS], TOPICS
    )
    assert [a.id for a in segment.articles] == [3, 2, 1]  # the top story stays: it leads
    assert segment.lead == 2
    assert (segment.note, segment.subject) == ("عدد خاص", "Special")


def test_the_lead_counts_only_pins_that_are_still_there() -> None:
    controls = EditionControls(1, DAY, pinned=(9, 2))
    segment = build_segment(_issue(controls), [9, 2, 1], ARTICLES, [ECONOMY, POLITICS], TOPICS)
    assert [a.id for a in segment.articles] == [2, 1]
    assert segment.lead == 1


def test_an_empty_digest_still_has_its_sections() -> None:
    segment = build_segment(_issue(), [], {}, [SPORTS, ECONOMY], TOPICS)
    assert segment.articles == ()
    assert [t.slug for t in segment.topics] == ["sports", "economy"]


def test_the_key_names_topics_language_date_and_articles() -> None:
    key = segment_key((1, 2), "ar", DAY, (4, 1))
    assert key == segment_key((1, 2), "ar", DAY, (4, 1))
    assert key != segment_key((2, 1), "ar", DAY, (4, 1))
    assert key != segment_key((1, 2), "en", DAY, (4, 1))
    assert key != segment_key((1, 2), "ar", DAY, (1, 4))
