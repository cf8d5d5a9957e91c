"""Selection: due-ness per timezone, windows by ingestion time, segments, constant queries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, event
from sqlmodel import Session

from digest.db.models import Delivery, Edition
from digest.selection.due import PlanRequest, due_in_batches, select_due
from digest.selection.window import local_due_date
from digest.send.plan import plan
from subscribers.people import suppress, unsubscribe
from tests.helpers.world import add_article, add_reader, make_world

NOV = datetime(2026, 11, 29, tzinfo=UTC)


def _select(engine: Engine, world, now: datetime, day: date | None = None):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return select_due(connection, world.daily, PlanRequest(now=now, max_articles=20, day=day))


def _emails(selection) -> set[str]:  # type: ignore[no-untyped-def]
    return {d.email for s in selection.segments for d in s.recipients} | {
        d.email for d in selection.empty
    }


def test_riyadh_and_new_york_at_seven_are_due_at_different_utc_moments(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    add_reader(session, world, "riyadh@example.org", ["politics"], timezone="Asia/Riyadh")
    add_reader(session, world, "ny@example.org", ["politics"], timezone="America/New_York")
    add_article(session, world, "خبر سياسي", ["politics"], NOV - timedelta(hours=2))

    def due(now: datetime) -> dict[str, date]:
        selection = _select(engine, world, now)
        plan(engine, selection, now)
        return {d.email: d.local_date for s in selection.segments for d in s.recipients} | {
            d.email: d.local_date for d in selection.empty
        }

    # 03:59 UTC: 06:59 in Riyadh (not yet), 22:59 of the 28th in New York (its 7:00 passed).
    assert due(NOV + timedelta(hours=3, minutes=59)) == {"ny@example.org": date(2026, 11, 28)}
    assert due(NOV + timedelta(hours=4)) == {"riyadh@example.org": date(2026, 11, 29)}
    assert due(NOV + timedelta(hours=11, minutes=59)) == {}
    assert due(NOV + timedelta(hours=12)) == {"ny@example.org": date(2026, 11, 29)}
    assert due(NOV + timedelta(hours=23)) == {}


def test_dst_days_in_new_york_neither_skip_nor_double() -> None:
    zone = "America/New_York"
    # 8 March 2026: clocks jump from 02:00 to 03:00; 07:00 EDT is 11:00 UTC.
    assert local_due_date(datetime(2026, 3, 8, 10, 59, tzinfo=UTC), zone, 7) is None
    assert local_due_date(datetime(2026, 3, 8, 11, tzinfo=UTC), zone, 7) == date(2026, 3, 8)
    # 1 November 2026: back to EST; 07:00 EST is 12:00 UTC.
    assert local_due_date(datetime(2026, 11, 1, 11, 59, tzinfo=UTC), zone, 7) is None
    assert local_due_date(datetime(2026, 11, 1, 12, tzinfo=UTC), zone, 7) == date(2026, 11, 1)
    # A send hour inside the spring gap (02:xx) still happens that day.
    assert local_due_date(datetime(2026, 3, 8, 7, 30, tzinfo=UTC), zone, 2) == date(2026, 3, 8)


def test_only_chosen_topics_in_the_first_24_hours_ranked_newest_first(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    add_reader(session, world, "a@example.org", ["economy", "politics"])
    now = NOV + timedelta(hours=5)
    old = add_article(session, world, "قديم", ["economy"], now - timedelta(hours=25))
    econ = add_article(session, world, "نفط", ["economy"], now - timedelta(hours=3))
    pol = add_article(session, world, "انتخابات", ["politics"], now - timedelta(hours=1))
    add_article(session, world, "مباراة", ["sports"], now - timedelta(hours=1))
    selection = _select(engine, world, now)
    (segment,) = selection.segments
    assert segment.article_ids == (pol, econ)
    assert old not in segment.article_ids
    assert [t.slug for t in segment.segment.topics] == ["economy", "politics"]


def test_subscribers_with_the_same_topics_share_one_segment(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    for i in range(5):
        add_reader(session, world, f"p{i}@example.org", ["politics"])
    add_reader(session, world, "e@example.org", ["economy"])
    add_reader(session, world, "en@example.org", ["politics"], locale="en")
    add_article(session, world, "خبر", ["politics", "economy"], NOV + timedelta(hours=1))
    selection = _select(engine, world, NOV + timedelta(hours=5))
    sizes = sorted(len(s.recipients) for s in selection.segments)
    assert sizes == [1, 1, 5]


def test_queries_do_not_grow_with_subscribers(engine: Engine, session: Session) -> None:
    world = make_world(session)
    add_article(session, world, "خبر", ["politics"], NOV + timedelta(hours=1))

    def count_queries(n: int) -> int:
        for i in range(n):
            add_reader(
                session, world, f"q{n}-{i}@example.org", ["politics", "economy"][: 1 + i % 2]
            )
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert _select(engine, world, NOV + timedelta(hours=5)).due >= n
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    assert count_queries(3) == count_queries(60)


def test_window_advances_on_empty_digest_and_sent_articles_never_repeat(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    add_reader(session, world, "a@example.org", ["politics"])
    day1 = NOV + timedelta(hours=5)
    first = _select(engine, world, day1)
    assert [d.email for d in first.empty] == ["a@example.org"]
    plan(engine, first, day1)
    assert _select(engine, world, day1 + timedelta(hours=1)).due == 0  # one digest a day
    between = add_article(session, world, "بعد", ["politics"], day1 + timedelta(hours=2))
    day2 = day1 + timedelta(days=1)
    second = _select(engine, world, day2)
    assert second.segments[0].article_ids == (between,)
    plan(engine, second, day2)
    # Scenario: an article reached the reader outside its window (e.g. in a catch-up
    # edition); the next digest must not repeat it.
    late = add_article(session, world, "متأخر", ["politics"], day2 + timedelta(hours=1))
    fresh = add_article(session, world, "جديد", ["politics"], day2 + timedelta(hours=3))
    catch_up = Edition(list_id=world.daily.id or 0, local_date=date(2026, 11, 1))
    session.add(catch_up)
    session.flush()
    session.add(
        Delivery(
            edition_id=catch_up.id or 0,
            list_id=world.daily.id or 0,
            subscriber_id=1,
            status="sent",
            window_start=day1,
            window_end=day1,
            article_ids=[late],
            created_at=day2 + timedelta(hours=2),
        )
    )
    session.commit()
    third = _select(engine, world, day2 + timedelta(days=1))
    assert third.segments[0].article_ids == (fresh,)


def test_unsubscribed_and_suppressed_are_not_due(engine: Engine, session: Session) -> None:
    world = make_world(session)
    for email in ("stay@example.org", "left@example.org", "bounced@example.org"):
        add_reader(session, world, email, ["politics"])
    unsubscribe(session, "left@example.org")
    suppress(session, "bounced@example.org", "hard_bounce")
    session.commit()
    assert _emails(_select(engine, world, NOV + timedelta(hours=5))) == {"stay@example.org"}


def _late_select(engine: Engine, world, now: datetime, hours: float = 6):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return select_due(
            connection,
            world.daily,
            PlanRequest(now=now, max_articles=20, max_lateness=timedelta(hours=hours)),
        )


def test_past_the_lateness_limit_a_day_is_skipped_a_first_digest_waits(
    engine: Engine, session: Session
) -> None:
    # Scenario: the scheduler comes back at 15:00 Riyadh (12:00 UTC) after a night down.
    world = make_world(session)
    for hour in (3, 8, 11):
        add_reader(session, world, f"h{hour}@example.org", ["politics"], hour=hour)
    add_article(session, world, "خبر", ["politics"], NOV - timedelta(hours=3))
    yesterday = NOV - timedelta(days=1) + timedelta(hours=9)
    plan(engine, _select(engine, world, yesterday), yesterday)  # they all had the 28th
    add_reader(session, world, "new@example.org", ["politics"], hour=3)
    night = NOV - timedelta(hours=1)  # 02:00 on the 29th in Riyadh: nobody's hour yet
    assert _late_select(engine, world, night).due == 0
    back = NOV + timedelta(hours=12)
    selection = _late_select(engine, world, back)
    # 11:00 was 4 h ago and 08:00 was 7 h ago: only the first is within 6 hours.
    assert _emails(selection) == {"h11@example.org"}
    assert {d.email: d.local_date for d in selection.late} == {
        "h3@example.org": date(2026, 11, 29),
        "h8@example.org": date(2026, 11, 29),
    }
    assert all(d.window_end == d.window_start for d in selection.late)  # nothing consumed
    # A wider limit sends them all; without a limit (`digest send`) nobody is late.
    assert _emails(_late_select(engine, world, back, hours=13)) == {
        "h3@example.org",
        "h8@example.org",
        "h11@example.org",
        "new@example.org",
    }
    assert _select(engine, world, back).late == []


def test_downtime_over_midnight_still_sends_yesterday_within_the_limit(
    engine: Engine, session: Session
) -> None:
    world = make_world(session)
    add_reader(session, world, "night@example.org", ["politics"], hour=23)
    add_article(session, world, "خبر", ["politics"], NOV - timedelta(days=2))
    first = NOV - timedelta(days=2) + timedelta(hours=20)  # 23:00 on the 27th in Riyadh
    plan(engine, _late_select(engine, world, first), first)
    add_article(session, world, "خبر ليلي", ["politics"], NOV - timedelta(hours=6))
    # Down from 22:30 on the 28th to 00:30 on the 29th (Riyadh): the 28th is still owed.
    back = NOV - timedelta(hours=2, minutes=30)
    selection = _late_select(engine, world, back)
    assert [(d.email, d.local_date) for s in selection.segments for d in s.recipients] == [
        ("night@example.org", date(2026, 11, 28))
    ]
    plan(engine, selection, back)
    assert _late_select(engine, world, back + timedelta(minutes=5)).due == 0
    # Past the limit, yesterday is skipped and recorded, not sent.
    later = back + timedelta(days=1, hours=5)  # 05:30 on the 30th, 6.5 h after 23:00
    assert [d.local_date for d in _late_select(engine, world, later).late] == [date(2026, 11, 29)]


def test_lateness_counts_real_hours_across_the_spring_dst_jump(
    engine: Engine, session: Session
) -> None:
    # 8 March 2026 in New York: 01:00 EST is 06:00 UTC; at 12:00 UTC (08:00 EDT) six real
    # hours have passed, though the wall clock moved seven.
    world = make_world(session)
    add_reader(session, world, "ny@example.org", ["politics"], timezone="America/New_York", hour=1)
    march = datetime(2026, 3, 7, 12, tzinfo=UTC)
    add_article(session, world, "خبر", ["politics"], march - timedelta(hours=1))
    plan(engine, _late_select(engine, world, march), march)  # the 7th, to have a history
    jump = datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert _emails(_late_select(engine, world, jump)) == {"ny@example.org"}
    late = _late_select(engine, world, jump + timedelta(minutes=1))
    assert [d.local_date for d in late.late] == [date(2026, 3, 8)]


def test_weekly_lists_send_every_seven_days(engine: Engine, session: Session) -> None:
    world = make_world(session, cadence="weekly")
    add_reader(session, world, "w@example.org", ["politics"])
    start = NOV + timedelta(hours=5)
    plan(engine, _select(engine, world, start), start)
    due_days = []
    for days in range(1, 15):
        moment = start + timedelta(days=days)
        selection = _select(engine, world, moment)
        if selection.due:
            due_days.append(days)
            plan(engine, selection, moment)
    assert due_days == [7, 14]


def _batched(engine: Engine, world, now: datetime, size: int, **options):  # type: ignore[no-untyped-def]
    return list(
        due_in_batches(
            engine, world.daily, PlanRequest(now=now, max_articles=20, **options), batch_size=size
        )
    )


def _digests(selections) -> dict[str, tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """email -> (key of their digest or "empty", date, window) over one or more selections."""
    found: dict[str, tuple[object, ...]] = {}
    for selection in selections:
        for planned in selection.segments:
            for d in planned.recipients:
                found[d.email] = (planned.key, d.local_date, d.window_start, d.window_end)
        for d in selection.empty:
            found[d.email] = ("empty", d.local_date, d.window_start, d.window_end)
        for d in selection.late:
            found[d.email] = ("late", d.local_date, d.window_start, d.window_end)
    return found


def test_batches_together_select_exactly_what_select_due_selects(
    engine: Engine, session: Session
) -> None:
    # Scenario: a list planned batch by batch (a million subscribers) must give every reader
    # the digest the one-query selection gives: zones, topics, languages, history, the
    # suppressed and the unsubscribed, articles already sent.
    world = make_world(session)
    zones = ["Asia/Riyadh", "America/New_York", "Europe/London", "Asia/Tokyo"]
    choices = [["politics"], ["economy"], ["politics", "economy"], ["sports"], []]
    for i in range(23):
        add_reader(
            session,
            world,
            f"b{i}@example.org",
            choices[i % len(choices)] or ["politics", "economy", "sports"],
            timezone=zones[i % len(zones)],
            locale="en" if i % 4 == 3 else "ar",
        )
    unsubscribe(session, "b5@example.org")
    suppress(session, "b6@example.org", "hard_bounce")
    session.commit()
    day1 = NOV + timedelta(hours=12)
    add_article(session, world, "سياسة", ["politics"], day1 - timedelta(hours=3))
    add_article(session, world, "اقتصاد", ["economy"], day1 - timedelta(hours=2))
    plan(engine, _select(engine, world, day1), day1)  # a history: cutoffs, sent articles
    add_article(session, world, "جديد", ["politics", "economy"], day1 + timedelta(hours=5))
    for i in range(23, 30):  # newcomers: first digests, a different window
        add_reader(session, world, f"b{i}@example.org", ["economy"], timezone=zones[i % 4])
    day2 = day1 + timedelta(days=1)
    whole = _select(engine, world, day2)
    assert len(_digests([whole])) == 28  # everyone but the unsubscribed and the suppressed
    for size in (1, 2, 7, 100):
        batches = _batched(engine, world, day2, size)
        assert _digests(batches) == _digests([whole]), size
        assert sum(b.due for b in batches) == whole.due  # and so nobody in two batches
    # Catching up after downtime: the same late and waiting readers, batch or not.
    later = day2 + timedelta(hours=13)
    with engine.connect() as connection:
        caught = select_due(
            connection,
            world.daily,
            PlanRequest(now=later, max_articles=20, max_lateness=timedelta(hours=4)),
        )
    batches = _batched(engine, world, later, 3, max_lateness=timedelta(hours=4))
    assert _digests(batches) == _digests([caught]) and caught.late


def test_a_batch_reads_only_its_own_subscribers(engine: Engine, session: Session) -> None:
    # The queries of a batch are bounded to its subscribers: their number does not depend on
    # the list's size, and deliveries planned meanwhile for others are never read.
    world = make_world(session)
    for i in range(9):
        add_reader(session, world, f"r{i}@example.org", ["politics"])
    add_article(session, world, "خبر", ["politics"], NOV + timedelta(hours=1))
    now = NOV + timedelta(hours=5)
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        counts = []
        for selection in due_in_batches(
            engine, world.daily, PlanRequest(now=now, max_articles=20), batch_size=3
        ):
            counts.append(len(statements))
            plan(engine, selection, now)  # others' rows appear between two batches
            statements.clear()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert len(counts) == 3 and counts[1] == counts[2]
    with engine.connect() as connection:
        assert select_due(connection, world.daily, PlanRequest(now=now, max_articles=20)).due == 0
