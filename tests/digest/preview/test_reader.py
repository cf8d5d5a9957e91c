"""Preview selection: the window, topics and language a subscriber or topic mix gets."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from digest.catalog.topics import add_topic
from digest.config import Settings
from digest.db.models import Article, ArticleTopic, Topic
from digest.errors import InvalidInput, NotFound
from digest.preview.reader import preview
from digest.render.renderer import Renderer
from digest.selection.due import first_window
from subscribers.lists import create_list
from subscribers.people import subscribe
from tests.helpers.render_samples import options

DAY = date(2026, 11, 28)
SEND = datetime(2026, 11, 28, 4, tzinfo=UTC)  # 07:00 in Riyadh, the list's hour


def _article(session: Session, number: int, topics: list[Topic], ingested: datetime) -> Article:
    item = Article(
        url=f"https://news.example.org/a/{number}",
        title=f"خبر رقم {number}",
        summary="ملخص قصير.",
        body_html="<p>" + "كلمة " * 400 + "</p>",
        ingested_at=ingested,
    )
    session.add(item)
    session.flush()
    for topic in topics:
        session.add(ArticleTopic(article_id=item.id or 0, topic_id=topic.id or 0, reason="feed"))
    session.flush()
    return item


@pytest.fixture
def world(session: Session) -> dict[str, Topic]:
    economy = add_topic(session, slug="economy", name="اقتصاد", name_en="Economy")
    tech = add_topic(session, slug="tech", name="تقنية", name_en="Technology")
    sports = add_topic(session, slug="sports", name="رياضة")
    daily = create_list(session, slug="daily", name="النشرة اليومية", hour=7)
    create_list(session, slug="tech-only", name="تقنية", topic_ids=[tech.id or 0])
    _article(session, 1, [economy], SEND - timedelta(hours=1))
    _article(session, 2, [tech, economy], SEND - timedelta(hours=2))
    _article(session, 3, [sports], SEND - timedelta(hours=3))
    _article(session, 4, [economy], SEND - timedelta(hours=30))  # before the daily window
    _article(session, 5, [economy], SEND + timedelta(minutes=5))  # after the send time
    subscribe(
        session, email="eve@example.org", mailing_list=daily, name="Eve",
        topic_ids=[tech.id or 0], timezone="Asia/Riyadh", locale="en",
    )  # fmt: skip
    session.commit()
    return {"economy": economy, "tech": tech, "sports": sports}


def _ids(message_ids: tuple[int, ...]) -> list[int]:
    return sorted(message_ids)


def test_window_is_a_day_or_a_week() -> None:
    assert first_window("daily") == timedelta(days=1)
    assert first_window("weekly") == timedelta(days=7)


def test_topic_mix_gets_that_days_window_untracked(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    message = preview(
        session, settings, renderer, list_slug="daily", topic_slugs=["economy"], day=DAY
    )
    assert message.article_ids == (1, 2)  # newest first; 4 and 5 are outside the window
    assert "https://news.example.org/a/1" in message.html  # direct links
    assert "/o/" not in message.html and "/c/" not in message.html
    assert message.locale == "ar"


def test_no_choice_means_everything_the_list_offers(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    everything = preview(session, settings, renderer, list_slug="daily", day=DAY)
    assert _ids(everything.article_ids) == [1, 2, 3]
    offered = preview(session, settings, renderer, list_slug="tech-only", day=DAY)
    assert offered.article_ids == (2,)


def test_subscriber_gets_their_topics_language_and_name(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    message = preview(
        session, settings, renderer, list_slug="daily", email="eve@EXAMPLE.org", day=DAY
    )
    assert message.article_ids == (2,)
    assert message.locale == "en"
    assert '<html lang="en" dir="ltr"' in message.html
    assert "Hello Eve," in message.text


def test_max_articles_caps_the_preview(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    capped = settings.model_copy(
        update={"digest": settings.digest.model_copy(update={"max_articles": 1})}
    )
    message = preview(session, capped, Renderer(options(capped)), list_slug="daily", day=DAY)
    assert message.article_ids == (1,)


def test_bad_requests_are_clear_errors(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    with pytest.raises(NotFound, match="unknown topic 'nope'"):
        preview(session, settings, renderer, list_slug="daily", topic_slugs=["nope"])
    with pytest.raises(InvalidInput, match="does not offer topic 'economy'"):
        preview(session, settings, renderer, list_slug="tech-only", topic_slugs=["economy"])
    with pytest.raises(NotFound, match="not subscribed to list 'tech-only'"):
        preview(session, settings, renderer, list_slug="tech-only", email="eve@example.org")
    with pytest.raises(InvalidInput, match="not both"):
        preview(
            session, settings, renderer, list_slug="daily", email="eve@example.org",
            topic_slugs=["tech"],
        )  # fmt: skip
