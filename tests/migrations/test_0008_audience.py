"""Migration 0008: keys filled, duplicates differing only in case merged, the key made unique."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from digest.db.bulk import DriverSql
from digest.db.engine import alembic_config, make_engine
from subscribers.consent import membership, withdraw
from subscribers.import_batches import BatchWriter, Row
from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.people import Person, current_subscriber_id, subscribe
from subscribers.suppressions import RunFilter, run_suppressions

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def old_engine(db_url: str) -> Iterator[Engine]:
    """A database at 0007, the revision before this one."""
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0007")
    yield engine
    engine.dispose()


def _filler(column: dict[str, Any]) -> Any:
    """A value for a NOT NULL column the test does not care about."""
    if isinstance(column["type"], sa.JSON):
        return []
    try:
        kind = column["type"].python_type
    except NotImplementedError:
        return []
    fillers: dict[type, Any] = {int: 0, str: "", bool: False, datetime: NOW, date: NOW.date()}
    return fillers.get(kind, [] if kind in (list, dict) else "")


def _insert(connection: sa.Connection, table_name: str, /, **values: Any) -> int:
    """One row of `name` as the table stands at this revision (reflected); returns its id."""
    columns = sa.inspect(connection).get_columns(table_name)
    for column in columns:
        needed = not column["nullable"] and column.get("default") is None
        if needed and column["name"] not in values and column["name"] != "id":
            values[column["name"]] = _filler(column)
    table = sa.table(table_name, *(sa.column(c["name"], c["type"]) for c in columns))
    names = {c["name"] for c in columns}
    query = table.insert().values(**values)
    if "id" not in names:  # a link table
        connection.execute(query)
        return 0
    return int(connection.execute(query.returning(table.c.id)).scalar_one())


def _world(connection: sa.Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["topic"] = _insert(connection, "topic", slug="politics", name="سياسة")
    for slug in ("one", "two"):
        ids[slug] = _insert(connection, "mailing_list", slug=slug, name=slug, cadence="daily")
    for label, email, name in [
        ("reem", "Reem@example.org", ""),
        ("REEM", "REEM@example.org", "ريم"),
        ("reem3", "reem@example.org", "r"),
        ("idn", "user@bücher.de", ""),
        ("puny", "user@xn--bcher-kva.de", ""),
        ("solo", "solo@example.org", ""),
    ]:
        ids[label] = _insert(
            connection, "subscriber", email=email, name=name, timezone="Asia/Riyadh", locale="ar"
        )
    for label, who, slug, status in [
        ("s_reem_one", "reem", "one", "active"),
        ("s_REEM_one", "REEM", "one", "unsubscribed"),
        ("s_reem3_one", "reem3", "one", "unconfirmed"),
        ("s_reem3_two", "reem3", "two", "active"),
        ("s_idn_one", "idn", "one", "unconfirmed"),
        ("s_puny_one", "puny", "one", "active"),
    ]:
        withdrawn = NOW if status == "unsubscribed" else None
        ids[label] = _insert(
            connection,
            "subscription",
            subscriber_id=ids[who],
            list_id=ids[slug],
            status=status,
            requested_at=NOW,
            withdrawn_at=withdrawn,
            source=label,
        )
    _insert(connection, "subscription_topic", subscription_id=ids["s_reem3_two"], topic_id=1)
    _insert(connection, "subscription_topic", subscription_id=ids["s_reem_one"], topic_id=1)
    for label, day in (("e1", 1), ("e2", 2)):
        ids[label] = _insert(
            connection, "edition", list_id=ids["one"], local_date=date(2026, 11, day)
        )
    # Edition 1 went three times to one mailbox; edition 2 only to the third spelling.
    for who in ("reem", "REEM", "reem3"):
        ids[f"d1_{who}"] = _insert(
            connection, "delivery", edition_id=ids["e1"], list_id=ids["one"], subscriber_id=ids[who]
        )
    ids["d2"] = _insert(
        connection, "delivery", edition_id=ids["e2"], list_id=ids["one"], subscriber_id=ids["reem3"]
    )
    ids["open"] = _insert(
        connection, "event", kind="open", delivery_id=ids["d1_REEM"], subscriber_id=ids["REEM"]
    )
    ids["unsub"] = _insert(connection, "event", kind="unsubscribe", subscriber_id=ids["reem3"])
    ids["sup1"] = _insert(
        connection, "suppression", email="BOUNCED@example.org", reason="hard_bounce", note="550"
    )
    ids["sup2"] = _insert(connection, "suppression", email="bounced@example.org", reason="manual")
    return ids


def _rows(connection: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in connection.execute(sa.text(sql))]


def test_duplicates_are_merged_keeping_the_most_restrictive_consent(old_engine: Engine) -> None:
    # Scenario (item 4): Reem@, REEM@ and reem@ were three subscribers (three digests to one
    # mailbox); the migration makes them one, and the key unique.
    with old_engine.begin() as connection:
        ids = _world(connection)
    command.upgrade(alembic_config(old_engine), "0008")
    with old_engine.connect() as connection:
        people = _rows(connection, "SELECT id, email, email_key, name FROM subscriber ORDER BY id")
        assert people == [
            (ids["reem"], "Reem@example.org", "reem@example.org", "ريم"),
            (ids["idn"], "user@bücher.de", "user@xn--bcher-kva.de", ""),
            (ids["solo"], "solo@example.org", "solo@example.org", ""),
        ]
        subscriptions = _rows(
            connection,
            "SELECT id, subscriber_id, list_id, status, withdrawn_at IS NOT NULL "
            "FROM subscription ORDER BY id",
        )
        assert subscriptions == [
            (ids["s_REEM_one"], ids["reem"], ids["one"], "unsubscribed", True),
            (ids["s_reem3_two"], ids["reem"], ids["two"], "active", False),
            (ids["s_idn_one"], ids["idn"], ids["one"], "unconfirmed", False),
        ]
        topics = _rows(connection, "SELECT subscription_id FROM subscription_topic")
        assert topics == [(ids["s_reem3_two"],)]
        deliveries = _rows(
            connection, "SELECT id, edition_id, subscriber_id FROM delivery ORDER BY id"
        )
        assert deliveries == [
            (ids["d1_reem"], ids["e1"], ids["reem"]),
            (ids["d2"], ids["e2"], ids["reem"]),
        ]
        events = _rows(connection, "SELECT id, delivery_id, subscriber_id FROM event ORDER BY id")
        assert events == [
            (ids["open"], ids["d1_reem"], ids["reem"]),
            (ids["unsub"], None, ids["reem"]),
        ]
        aliases = _rows(connection, "SELECT id, subscriber_id, email FROM subscriber_alias")
        assert sorted(aliases) == [
            (ids["REEM"], ids["reem"], "REEM@example.org"),
            (ids["reem3"], ids["reem"], "reem@example.org"),
            (ids["puny"], ids["idn"], "user@xn--bcher-kva.de"),
        ]
        suppressions = _rows(
            connection, "SELECT id, email, email_key, reason, note FROM suppression"
        )
        assert suppressions == [
            (
                ids["sup1"],
                "BOUNCED@example.org",
                "bounced@example.org",
                "manual",  # the most severe of the group: never lifted as a bounce in bulk
                "550; merged: bounced@example.org (manual)",
            )
        ]
    with pytest.raises(IntegrityError), old_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO subscriber (email, email_key, name, locale, timezone, created_at) "
                "VALUES ('reem@EXAMPLE.org', 'reem@example.org', '', 'ar', 'UTC', :at)"
            ),
            {"at": NOW},
        )


def test_downgrade_keeps_every_subscription_and_upgrades_again(old_engine: Engine) -> None:
    # On SQLite a copied-and-dropped subscriber table would cascade into its subscriptions.
    with old_engine.begin() as connection:
        _world(connection)
    config = alembic_config(old_engine)
    command.upgrade(config, "0008")
    command.downgrade(config, "0007")
    with old_engine.connect() as connection:
        assert _rows(connection, "SELECT count(*) FROM subscription") == [(3,)]
        assert _rows(connection, "SELECT count(*) FROM delivery") == [(2,)]
    command.upgrade(config, "0008")
    with old_engine.connect() as connection:
        assert _rows(connection, "SELECT count(*) FROM subscriber WHERE email_key = ''") == [(0,)]


def test_a_merged_complaint_stays_a_complaint_and_is_never_lifted_in_bulk(
    old_engine: Engine,
) -> None:
    # The earliest row was a hard bounce, a later spelling complained: `unsuppress --since`
    # (hard bounces only) must not lift the complaint that was merged into the bounce.
    with old_engine.begin() as connection:
        first = _insert(connection, "suppression", email="Pat@x.com", reason="hard_bounce")
        _insert(connection, "suppression", email="pat@x.com", reason="complaint")
        _insert(connection, "suppression", email="PAT@x.com", reason="manual")
        _insert(connection, "suppression", email="lee@x.com", reason="hard_bounce")
        _insert(connection, "suppression", email="LEE@x.com", reason="hard_bounce")
    command.upgrade(alembic_config(old_engine), "0008")
    with old_engine.connect() as connection:
        assert _rows(connection, "SELECT id, reason FROM suppression ORDER BY id") == [
            (first, "complaint"),
            (first + 3, "hard_bounce"),
        ]
    command.upgrade(alembic_config(old_engine), "head")
    with Session(old_engine) as session:
        found = run_suppressions(session, RunFilter(since=NOW - timedelta(days=3650)))
        assert [s.email_key for s in found] == ["lee@x.com"]


def test_a_new_subscriber_never_takes_a_merged_id(old_engine: Engine) -> None:
    # Reviewer's scenario: bob@ (1) and Bob@ (2) merge; 2 becomes an alias of 1. SQLite gives
    # a new row the highest id + 1, so carol would have got 2 and her unsubscribe link would
    # have unsubscribed Bob.
    with old_engine.begin() as connection:
        _insert(connection, "mailing_list", slug="news", name="news", cadence="daily")
        bob = _insert(connection, "subscriber", email="bob@x.com", timezone="UTC", locale="en")
        bob2 = _insert(connection, "subscriber", email="Bob@x.com", timezone="UTC", locale="en")
    command.upgrade(alembic_config(old_engine), "head")
    with Session(old_engine) as session:
        news = session.exec(select(MailingList)).one()
        assert subscribe(session, Person("bob@x.com", "UTC"), news).status == "active"
        carol = subscribe(session, Person("carol@y.com", "UTC"), news).subscriber_id
        imported = _import_one(session, news, "dave@y.com")
        session.commit()
        assert carol not in (bob, bob2) and imported not in (bob, bob2, carol)
        assert membership(session, carol, news.id or 0).subscriber.email == "carol@y.com"
        assert membership(session, bob2, news.id or 0).subscriber.email == "bob@x.com"
        assert withdraw(session, subscriber_id=carol, list_id=news.id or 0) == [news.id]
        session.commit()
        statuses = dict(
            session.exec(
                select(Subscriber.email, Subscription.status).where(
                    Subscriber.id == Subscription.subscriber_id
                )
            ).all()
        )
        assert statuses["bob@x.com"] == "active"
        assert statuses["carol@y.com"] == "unsubscribed"


def test_a_live_subscriber_wins_over_an_alias_of_its_id(old_engine: Engine) -> None:
    # An alias whose id a live row holds (made before this was fixed) is dead: the link
    # names the live person.
    with old_engine.begin() as connection:
        _insert(connection, "subscriber", email="bob@x.com", timezone="UTC", locale="en")
        bob2 = _insert(connection, "subscriber", email="Bob@x.com", timezone="UTC", locale="en")
    command.upgrade(alembic_config(old_engine), "head")
    with old_engine.begin() as connection:
        _insert(
            connection,
            "subscriber",
            id=bob2,
            email="carol@y.com",
            email_key="carol@y.com",
            timezone="UTC",
            locale="en",
        )
    with Session(old_engine) as session:
        assert current_subscriber_id(session, bob2) == bob2


def _import_one(session: Session, mailing_list: MailingList, email: str) -> int:
    """A new subscriber written by the bulk import path; its id."""
    writer = BatchWriter(
        DriverSql(session.connection()), mailing_list.id or 0, "import", "1", lambda *a: None
    )
    row = Row(1, email, email, "", (), "UTC", None, "en")
    writer.write([row])
    return session.exec(select(Subscriber.id).where(Subscriber.email_key == email)).one() or 0
