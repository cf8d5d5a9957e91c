"""`digest editions`, `digest editors` and `digest lists create --needs-approval`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from digest.db.models import Edition
from digest.db.tables import EDITION
from digest.editions.editors import authenticate
from digest.editions.states import hold_sending
from digest.inbound.brake import ACTOR as BRAKE
from tests.helpers.cli import Cli
from tests.helpers.outbox import NOW
from tests.helpers.returns import sent_edition
from tests.helpers.world import add_article, add_reader, make_world


def _today_edition(cli: Cli) -> dict[str, object]:
    rows = json.loads(cli.ok("editions", "list", "--json").stdout)
    return min(rows, key=lambda r: str(r["date"]))  # today's and tomorrow's exist now


def test_editions_list_show_and_steer(cli: Cli, session: Session) -> None:
    world = make_world(session, hour=0)
    add_reader(session, world, "p@example.org", ["politics"], timezone="UTC")
    add_reader(session, world, "e@example.org", ["economy"], timezone="UTC")
    add_reader(session, world, "pe@example.org", ["politics", "economy"], timezone="UTC")
    now = datetime.now(UTC)
    politics = add_article(session, world, "انتخابات", ["politics"], now - timedelta(hours=1))
    economy = add_article(session, world, "نفط", ["economy"], now - timedelta(hours=2))
    edition = _today_edition(cli)
    assert edition["status"] == "draft"
    eid = str(edition["id"])
    shown = json.loads(cli.ok("editions", "show", eid, "--json").stdout)
    counts = {tuple(s["topics"]): (s["subscribers"], [a["id"] for a in s["articles"]])
              for s in shown["segments"]}  # fmt: skip
    assert counts == {
        ("politics",): (1, [politics]),
        ("economy",): (1, [economy]),
        ("politics", "economy"): (1, [politics, economy]),
    }
    assert "pinned" in cli.ok("editions", "pin", eid, str(economy)).stdout
    cli.ok("editions", "subject", eid, "عاجل: {top_title}")
    cli.ok("editions", "note", eid, "صباح الخير")
    cli.ok("editions", "order", eid, "economy", "politics")
    shown = json.loads(cli.ok("editions", "show", eid, "--json").stdout)
    both = next(s for s in shown["segments"] if len(s["topics"]) == 2)
    assert both["topics"] == ["economy", "politics"]
    assert [(a["id"], a["lead"]) for a in both["articles"]] == [(economy, True), (politics, False)]
    assert [a["action"] for a in shown["actions"]] == ["pin", "subject", "note", "order"]
    assert shown["actions"][0]["actor"].startswith("cli")
    text = cli.ok("editions", "show", eid).stdout
    assert "1 subscriber(s) · topics economy, politics" in text
    assert "* 1. [" in text  # the lead is marked
    # Approve; a second approval is refused with a clear message.
    assert "status approved" in cli.ok("editions", "approve", eid, "--by", "reem").stdout
    again = cli("editions", "approve", eid)
    assert again.exit_code == 1 and "already approved" in again.stderr
    assert "status held" in cli.ok("editions", "hold", eid).stdout
    assert "status approved" in cli.ok("editions", "release", eid).stdout


def test_bad_editions_input_is_refused_with_exit_1(cli: Cli, session: Session) -> None:
    world = make_world(session)
    old = add_article(session, world, "قديم", ["politics"], datetime.now(UTC) - timedelta(days=9))
    eid = str(_today_edition(cli)["id"])
    for args, message in (
        (("editions", "pin", eid, str(old)), "outside the window"),
        (("editions", "pin", eid, "999"), "no article 999"),
        (("editions", "note", eid, "<b>x</b>"), "plain text"),
        (("editions", "subject", eid, "x" * 500), "at most 150"),
        (("editions", "show", "999"), "no edition 999"),
        (("editions", "release", eid), "not held"),
    ):
        result = cli(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_editors_add_hashes_the_password(cli: Cli, session: Session) -> None:
    out = cli.ok(
        "editors", "add", "Ed@News.Example.org", "--password-stdin", input="secret pass 1\n"
    )
    assert "editor ed@news.example.org added" in out.stdout  # logins ignore case
    short = cli("editors", "add", "x@example.org", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 10" in short.stderr
    twice = cli("editors", "add", "ed@news.example.org", "--password-stdin", input="x" * 12)
    assert twice.exit_code == 1 and "already exists" in twice.stderr
    prompted = cli.ok("editors", "add", "b@example.org", input="another pass\nanother pass\n")
    assert "added" in prompted.stdout
    listed = json.loads(cli.ok("editors", "list", "--json").stdout)
    assert [e["email"] for e in listed] == ["b@example.org", "ed@news.example.org"]
    now = datetime.now(UTC)
    editor = authenticate(session, "ED@news.example.org", "secret pass 1", now=now)
    assert editor is not None and editor.password_hash.startswith("$argon2id$")
    assert authenticate(session, "ed@news.example.org", "secret pass 2", now=now) is None
    session.commit()  # the login was recorded
    cli.ok("editors", "remove", "b@example.org")


def test_a_list_that_needs_approval(cli: Cli, session: Session) -> None:
    cli.ok("lists", "create", "breaking", "--name", "عاجل", "--needs-approval")
    shown = json.loads(cli.ok("lists", "show", "breaking", "--json").stdout)
    assert shown["needs_approval"] is True
    cli.ok("editions", "list", "--list", "breaking")
    assert len(session.exec(select(Edition)).all()) == 2  # today's and tomorrow's drafts


def test_show_marks_an_edition_the_bounce_brake_paused(
    cli: Cli, engine: Engine, session: Session
) -> None:
    sent = sent_edition(engine, session)
    eid = str(sent.edition_id)
    detail = "inbound brake: hard-bounce rate 50.00% (2 of 4 sent) is over 5.00%"
    with engine.begin() as connection:
        connection.execute(
            update(EDITION).where(EDITION.c.id == sent.edition_id).values(status="sending")
        )
        hold_sending(connection, [sent.edition_id], actor=BRAKE, detail=detail, now=NOW)
    text = cli.ok("editions", "show", eid).stdout
    assert (
        f"paused by the bounce brake: {detail}; release with digest editions release {eid}" in text
    )
    shown = json.loads(cli.ok("editions", "show", eid, "--json").stdout)
    assert shown["status"] == "held"
    assert shown["brake"]["detail"] == detail
    assert shown["brake"]["release"] == f"digest editions release {eid}"
    assert shown["actions"][-1]["actor"] == BRAKE
    cli.ok("editions", "release", eid)
    assert "bounce brake" not in cli.ok("editions", "show", eid).stdout
    assert json.loads(cli.ok("editions", "show", eid, "--json").stdout)["brake"] is None
