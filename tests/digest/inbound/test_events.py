"""Reading inbound events: filters, an address's story (suppression, lifts, events), one line."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from digest.db.models import InboundKind
from digest.errors import InvalidInput
from digest.inbound.events import (
    DIAGNOSTIC_CHARS,
    EventFilter,
    address_events,
    address_story,
    list_events,
    parse_kind,
)
from subscribers import people, suppressions
from subscribers.models import SuppressionReason
from tests.helpers.returns import Sent, add_event, at, sent_edition

HARD, SOFT = InboundKind.HARD_BOUNCE, InboundKind.SOFT_BOUNCE


@pytest.fixture
def sent(engine: Engine, session: Session) -> Sent:
    return sent_edition(engine, session)


def _kinds(engine: Engine, wanted: EventFilter) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        return [(e.kind, e.address) for e in list_events(connection, wanted)]


def test_filters_by_time_kind_list_and_edition_newest_first(
    engine: Engine, session: Session, sent: Sent
) -> None:
    add_event(session, sent, HARD, "r0@example.org", minutes=1, status="5.1.1", smtp_code=550)
    add_event(session, sent, SOFT, "r1@example.org", minutes=2, status="4.2.2")
    add_event(session, sent, InboundKind.AUTO_REPLY, "r2@example.org", minutes=3)
    add_event(session, None, InboundKind.UNKNOWN, "", minutes=4, reason="no VERP token")
    everything = _kinds(engine, EventFilter())
    assert everything == [
        ("unknown", ""),
        ("auto_reply", "r2@example.org"),
        ("soft_bounce", "r1@example.org"),
        ("hard_bounce", "r0@example.org"),
    ]
    assert _kinds(engine, EventFilter(kind=HARD)) == [("hard_bounce", "r0@example.org")]
    assert _kinds(engine, EventFilter(since=at(2))) == everything[:3]
    assert _kinds(engine, EventFilter(list_id=sent.world.daily.id)) == everything[1:]
    assert _kinds(engine, EventFilter(edition_id=sent.edition_id, limit=2)) == everything[1:3]
    assert _kinds(engine, EventFilter(edition_id=sent.edition_id + 99)) == []
    with engine.connect() as connection:
        (hard,) = list_events(connection, EventFilter(kind=HARD))
        unknown = list_events(connection, EventFilter(kind=InboundKind.UNKNOWN))[0]
    assert hard.list_slug == "daily" and hard.edition_id == sent.edition_id
    assert hard.as_dict()["received_at"].startswith("2026-11-29T06:01:00")
    line = hard.line()
    assert line.startswith("2026-11-29 06:01:00  hard_bounce  smtp  r0@example.org  550 5.1.1")
    assert f"list daily edition {sent.edition_id} delivery {hard.delivery_id}" in line
    assert unknown.list_slug is None and "(no address)" in unknown.line()
    assert unknown.line().endswith("· no VERP token")


def test_a_limit_below_one_is_refused(engine: Engine) -> None:
    with engine.connect() as connection, pytest.raises(InvalidInput, match="--limit 0"):
        list_events(connection, EventFilter(limit=0))


@pytest.mark.parametrize("text", ["HARD_BOUNCE", " complaint ", "unknown"])
def test_kinds_parse_in_any_case(text: str) -> None:
    assert parse_kind(text).value == text.strip().lower()


def test_an_unknown_kind_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="use one of hard_bounce, soft_bounce, delayed"):
        parse_kind("bounced\x1b[2J")


def test_hostile_text_stays_on_one_clean_line(session: Session, engine: Engine) -> None:
    diagnostic = "550 no such user\r\n\x1b]0;pwned\x07\u202eevil" + "x" * 500
    add_event(session, None, HARD, "a@example.org\n", diagnostic=diagnostic)
    with engine.connect() as connection:
        (event,) = list_events(connection, EventFilter())
    line = event.line()
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u202e" not in line
    assert line.endswith("…") and len(line) < 60 + DIAGNOSTIC_CHARS
    assert event.as_dict()["diagnostic"] == diagnostic  # the JSON keeps it whole


def test_an_address_story_gathers_its_events_in_any_spelling(
    engine: Engine, session: Session, sent: Sent
) -> None:
    add_event(session, sent, SOFT, "R0@Example.org", minutes=1)
    add_event(session, sent, HARD, "r0@example.org", minutes=2)
    # A mailto unsubscribe sent from another address is traced to r0's delivery.
    other = add_event(session, sent, InboundKind.UNSUBSCRIBE, "r0@example.org", minutes=3)
    other.address, other.email_key = "work@example.com", "work@example.com"
    session.add(other)
    session.commit()
    add_event(session, sent, HARD, "r1@example.org", minutes=4)
    with engine.connect() as connection:
        found = [(e.kind, e.address) for e in address_events(connection, "R0@EXAMPLE.ORG")]
        assert address_events(connection, "nobody@example.org") == []
        assert address_events(connection, "bad\x00@example.org") == []
        assert address_events(connection, "  ") == []
    assert found == [
        ("unsubscribe", "work@example.com"),
        ("hard_bounce", "r0@example.org"),
        ("soft_bounce", "R0@Example.org"),
    ]


@pytest.mark.parametrize(
    "reason",
    [SuppressionReason.HARD_BOUNCE, SuppressionReason.SOFT_BOUNCE, SuppressionReason.COMPLAINT],
)
def test_the_story_says_why_it_is_suppressed_and_what_was_lifted(
    session: Session, sent: Sent, reason: SuppressionReason
) -> None:
    event = add_event(session, sent, HARD, "r0@example.org", status="5.1.1", smtp_code=550)
    suppression = people.suppress(session, "r0@example.org", reason.value)
    suppression.note, suppression.smtp_code, suppression.enhanced = (
        "550 5.1.1 unknown",
        550,
        "5.1.1",
    )
    suppression.delivery_id, suppression.edition_id = event.delivery_id, sent.edition_id
    session.add(suppression)
    session.commit()
    story = address_story(session, "R0@example.org")
    assert story.suppression is not None
    assert story.suppression["reason"] == reason.value
    assert story.suppression["delivery_id"] == sent.deliveries["r0@example.org"]
    assert [e.kind for e in story.events] == ["hard_bounce"]
    (first,) = story.summary()
    assert first.startswith(f"r0@example.org: suppressed — {reason.value} 550 5.1.1 since ")
    assert f"edition {sent.edition_id}" in first and "· 550 5.1.1 unknown" in first
    suppressions.unsuppress(session, "r0@example.org", suppressions.Audit("cli:reem", "mistake"))
    session.commit()
    story = address_story(session, "r0@example.org")
    assert story.suppression is None and story.as_dict()["suppressed"] is False
    (lift,) = story.lifted
    assert (lift["reason"], lift["lifted_by"], lift["why"]) == (reason.value, "cli:reem", "mistake")
    assert story.summary()[0] == "r0@example.org: not suppressed"
    assert story.summary()[1].startswith("lifted ") and "by cli:reem: mistake" in story.summary()[1]
    assert [e.kind for e in story.events] == ["hard_bounce"]  # the events stay


def test_a_story_needs_an_address(session: Session) -> None:
    with pytest.raises(InvalidInput, match="give an email address"):
        address_story(session, " \x1b ")
    story = address_story(session, "never@example.org")
    assert (story.suppression, story.lifted, story.events) == (None, [], [])
