"""Preview selection: the window, topics and language a subscriber or topic mix gets, and
the same articles as sending for the same reader and date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.catalog.topics import add_topic
from digest.config import Settings
from digest.db.models import Article, ArticleTopic, Topic
from digest.errors import InvalidInput, NotFound
from digest.preview.reader import PreviewOptions, PreviewRequest, preview
from digest.render.renderer import Renderer
from digest.selection.due import PlanRequest, due_on, segments_for, select_due
from digest.send.plan import plan
from subscribers.lists import ListSpec, create_list
from subscribers.people import Person, subscribe
from tests.helpers.render_samples import options
from tests.helpers.world import World, add_article, add_reader, make_world

DAY = date(2026, 11, 28)
SEND = datetime(2026, 11, 28, 4, tzinfo=UTC)  # 07:00 in Riyadh, the list's hour
EARLY = SEND - timedelta(hours=5)  # the editor previews DAY before its hour


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
    daily = create_list(session, ListSpec(slug="daily", name="النشرة اليومية", hour=7))
    create_list(session, ListSpec(slug="tech-only", name="تقنية", topic_ids=[tech.id or 0]))
    _article(session, 1, [economy], SEND - timedelta(hours=1))
    _article(session, 2, [tech, economy], SEND - timedelta(hours=2))
    _article(session, 3, [sports], SEND - timedelta(hours=3))
    _article(session, 4, [economy], SEND - timedelta(hours=30))  # before the daily window
    _article(session, 5, [economy], SEND + timedelta(minutes=5))  # after the send time
    eve = Person("eve@example.org", "Asia/Riyadh", name="Eve", locale="en")
    subscribe(session, eve, daily, topic_ids=[tech.id or 0])
    session.commit()
    return {"economy": economy, "tech": tech, "sports": sports}


def _ids(message_ids: tuple[int, ...]) -> list[int]:
    return sorted(message_ids)


def test_topic_mix_gets_that_days_window_untracked(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)
    message = preview(
        session,
        opts,
        renderer,
        PreviewRequest(list_slug="daily", topic_slugs=["economy"], day=DAY, now=EARLY),
    )
    assert message.article_ids == (1, 2)  # newest first; 4 and 5 are outside the window
    assert "https://news.example.org/a/1" in message.html  # direct links
    assert "/o/" not in message.html and "/c/" not in message.html
    assert message.locale == "ar"


def test_no_choice_means_everything_the_list_offers(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)
    everything = preview(
        session, opts, renderer, PreviewRequest(list_slug="daily", day=DAY, now=EARLY)
    )
    assert _ids(everything.article_ids) == [1, 2, 3]
    offered = preview(
        session, opts, renderer, PreviewRequest(list_slug="tech-only", day=DAY, now=EARLY)
    )
    assert offered.article_ids == (2,)


def test_subscriber_gets_their_topics_language_and_name(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)
    message = preview(
        session,
        opts,
        renderer,
        PreviewRequest(list_slug="daily", email="eve@EXAMPLE.org", day=DAY, now=EARLY),
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
    message = preview(
        session,
        PreviewOptions.from_settings(capped),
        Renderer(options(capped)),
        PreviewRequest(list_slug="daily", day=DAY, now=EARLY),
    )
    assert message.article_ids == (1,)


def test_bad_requests_are_clear_errors(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)
    with pytest.raises(NotFound, match="unknown topic 'nope'"):
        preview(session, opts, renderer, PreviewRequest(list_slug="daily", topic_slugs=["nope"]))
    with pytest.raises(InvalidInput, match="does not offer topic 'economy'"):
        preview(
            session, opts, renderer, PreviewRequest(list_slug="tech-only", topic_slugs=["economy"])
        )
    with pytest.raises(NotFound, match="not subscribed to list 'tech-only'"):
        preview(
            session, opts, renderer, PreviewRequest(list_slug="tech-only", email="eve@example.org")
        )
    with pytest.raises(InvalidInput, match="not both"):
        preview(
            session,
            opts,
            renderer,
            PreviewRequest(list_slug="daily", email="eve@example.org", topic_slugs=["tech"]),
        )


def test_a_past_day_ends_now_as_sending_it_late_would(
    session: Session, settings: Settings, world: dict[str, Topic]
) -> None:
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)
    later = SEND + timedelta(hours=1)
    message = preview(
        session,
        opts,
        renderer,
        PreviewRequest(list_slug="daily", topic_slugs=["economy"], day=DAY, now=later),
    )
    assert message.article_ids == (5, 1, 2)  # 5 came in after the hour, before now


# The same reader and date, previewed and sent: DAY's hour is 07:00 in Riyadh (SEND).
HOUR = SEND


def _sent_ids(engine: Engine, world: World, now: datetime) -> tuple[int, ...]:
    """The article ids `digest send` at `now` gives the reader (the only one on the list)."""
    with engine.connect() as connection:
        selection = select_due(connection, world.daily, PlanRequest(now=now, max_articles=20))
    (segment,) = selection.segments
    return segment.article_ids


def _projected_ids(engine: Engine, world: World, now: datetime) -> tuple[int, ...]:
    """The article ids the editors' projection of DAY's edition at `now` gives the reader."""
    with engine.connect() as connection:
        due = due_on(connection, world.daily, DAY, now=now)
        selection = segments_for(connection, world.daily, due, max_articles=20, tracking=False)
    (segment,) = selection.segments
    return segment.article_ids


def test_preview_and_send_give_the_reader_the_same_articles(
    engine: Engine, session: Session, settings: Settings
) -> None:
    world = make_world(session, hour=7)
    add_reader(session, world, "r@example.org", ["economy", "politics"], timezone="Asia/Riyadh")
    day_before = HOUR - timedelta(days=1)
    add_article(session, world, "قديم", ["economy"], day_before - timedelta(hours=1))
    with engine.connect() as connection:
        yesterday = select_due(
            connection, world.daily, PlanRequest(now=day_before, max_articles=20)
        )
    plan(engine, yesterday, day_before)  # the 27th's digest: its cutoff starts DAY's window
    evening = add_article(session, world, "مساء", ["politics"], day_before + timedelta(hours=14))
    night = add_article(session, world, "ليل", ["economy"], HOUR - timedelta(hours=2))
    dawn = add_article(session, world, "فجر", ["politics"], HOUR - timedelta(minutes=1))
    late = add_article(session, world, "ضحى", ["economy"], HOUR + timedelta(hours=1))
    add_article(session, world, "مباراة", ["sports"], HOUR - timedelta(hours=1))
    renderer = Renderer(options(settings))
    opts = PreviewOptions.from_settings(settings)

    def previewed(now: datetime) -> tuple[int, ...]:
        message = preview(
            session,
            opts,
            renderer,
            PreviewRequest(list_slug="daily", email="r@example.org", day=DAY, now=now),
        )
        return message.article_ids

    # Before the hour: the window the send at the hour will take (the cutoff of the 27th's
    # digest to 07:00), whatever comes in after the preview.
    before = HOUR - timedelta(hours=3)
    assert previewed(before) == (dawn, night, evening)
    assert _projected_ids(engine, world, before) == (dawn, night, evening)
    assert _sent_ids(engine, world, HOUR) == (dawn, night, evening)
    # After the hour: up to now, as a send now would take it.
    after = HOUR + timedelta(hours=2)
    assert previewed(after) == (late, dawn, night, evening)
    assert _projected_ids(engine, world, after) == (late, dawn, night, evening)
    assert _sent_ids(engine, world, after) == (late, dawn, night, evening)
