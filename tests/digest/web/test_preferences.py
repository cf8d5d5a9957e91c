"""Preferences: the form shows the choices, a CSRF-safe POST saves them, the next send obeys."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.db.engine import sqlite_file
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from subscribers.people import describe
from tests.helpers.web import SENT_AT, add_news, event_count, reader, send_digests, wait_for
from tests.helpers.world import World

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _token(settings: Settings, sid: int, world: World) -> str:
    return Signer(settings.web.secret_key).dumps(Purpose.PREFERENCES, sid, world.daily.id or 0)


def _form(client: TestClient, token: str) -> dict[str, str]:
    page = client.get(f"/p/{token}")
    assert page.status_code == 200
    match = CSRF.search(page.text)
    assert match is not None
    return {"csrf": match.group(1)}


def _choices(session: Session, email: str = "reem@example.org") -> dict[str, object]:
    session.expire_all()
    person = describe(session, email)
    (daily,) = [s for s in person["subscriptions"] if s["list"] == "daily"]
    return {
        "topics": daily["topics"],
        "hour": daily["hour"],
        "status": daily["status"],
        "timezone": person["timezone"],
        "locale": person["locale"],
    }


def test_the_form_shows_the_list_topics_with_the_chosen_ones_ticked(
    session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    sid = reader(session, world, "reem@example.org", ["economy"])
    page = client.get(f"/p/{_token(web_settings, sid, world)}").text
    assert '<html lang="ar" dir="rtl">' in page
    for name in ("سياسة", "اقتصاد", "رياضة"):
        assert name in page
    ticked = re.findall(r'name="topic" value="(\d+)" checked', page)
    assert ticked == [str(world.topic_id("economy"))]
    assert 'value="UTC" selected' in page


def test_saving_topics_hour_zone_and_language(
    session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    sid = reader(session, world, "reem@example.org", ["economy"])
    token = _token(web_settings, sid, world)
    form = _form(client, token) | {
        "action": "save",
        "timezone": "Africa/Cairo",
        "hour": "6",
        "locale": "en",
    }
    form["topic"] = [str(world.topic_id("sports")), str(world.topic_id("politics"))]  # type: ignore[assignment]
    response = client.post(f"/p/{token}", data=form)
    assert response.status_code == 200
    assert '<html lang="en" dir="ltr">' in response.text  # the page follows the new language
    assert "Your choices are saved." in response.text
    assert _choices(session) == {
        "topics": ["politics", "sports"],  # in the list's order
        "hour": 6,
        "status": "active",
        "timezone": "Africa/Cairo",
        "locale": "en",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"csrf": ""},
        {"csrf": "forged.token.value"},
        {"topic": "9999"},
        {"topic": "abc"},
        {"topic": None},
        {"timezone": "Mars/Olympus_Mons"},
        {"hour": "25"},
        {"hour": "seven"},
        {"locale": "fr"},
        {"action": "drop_tables"},
    ],
)
def test_bad_posts_change_nothing(
    session: Session,
    world: World,
    web_settings: Settings,
    client: TestClient,
    change: dict[str, str | None],
) -> None:
    sid = reader(session, world, "reem@example.org", ["economy"])
    token = _token(web_settings, sid, world)
    before = _choices(session)
    form: dict[str, str | None] = _form(client, token) | {
        "action": "save",
        "timezone": "Africa/Cairo",
        "hour": "6",
        "locale": "ar",
        "topic": str(world.topic_id("sports")),
    }
    form.update(change)
    response = client.post(f"/p/{token}", data={k: v for k, v in form.items() if v is not None})
    assert response.status_code == 400
    assert "<html" in response.text and "Traceback" not in response.text
    assert _choices(session) == before


def test_a_form_token_of_another_subscriber_is_refused(
    session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    reem = reader(session, world, "reem@example.org", ["economy"])
    omar = reader(session, world, "omar@example.org", ["economy"])
    omar_form = _form(client, _token(web_settings, omar, world))
    before = _choices(session)
    response = client.post(
        f"/p/{_token(web_settings, reem, world)}",
        data=omar_form | {"action": "unsubscribe_all"},
    )
    assert response.status_code == 400
    assert _choices(session) == before


def test_unsubscribe_all_then_subscribe_again(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    sid = reader(session, world, "reem@example.org", ["economy"])
    token = _token(web_settings, sid, world)
    response = client.post(f"/p/{token}", data=_form(client, token) | {"action": "unsubscribe_all"})
    assert response.status_code == 200
    assert _choices(session)["status"] == "unsubscribed"
    page = client.get(f"/p/{token}").text
    assert 'value="resubscribe"' in page
    response = client.post(f"/p/{token}", data=_form(client, token) | {"action": "resubscribe"})
    assert response.status_code == 200
    assert _choices(session)["status"] == "active"
    wait_for(lambda: event_count(engine, kind="unsubscribe") == 1)


def test_a_topic_change_is_in_the_next_send(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    # Scenario: Reem reads economy, switches to sports in the form; tomorrow's digest has sports.
    sid = reader(session, world, "reem@example.org", ["economy"])
    yesterday = SENT_AT - timedelta(days=1)
    add_news(session, world, at=yesterday)
    first = send_digests(engine, world, web_settings, now=yesterday)["reem@example.org"]
    text = first.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "أسعار النفط" in text and "كأس الخليج" not in text
    token = _token(web_settings, sid, world)
    form = _form(client, token) | {"timezone": "UTC", "hour": "", "locale": "ar"}
    form["topic"] = str(world.topic_id("sports"))
    assert client.post(f"/p/{token}", data=form).status_code == 200
    add_news(session, world, at=SENT_AT)
    second = send_digests(engine, world, web_settings, now=SENT_AT)["reem@example.org"]
    text = second.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "كأس الخليج" in text and "أسعار النفط" not in text


@pytest.mark.sqlite_only
def test_unsubscribe_all_on_a_locked_database_is_spooled_and_applied(
    engine: Engine, session: Session, world: World, web_settings: Settings, tmp_path: Path
) -> None:
    sid = reader(session, world, "reem@example.org", ["economy"])
    token = _token(web_settings, sid, world)
    web = web_settings.web.model_copy(
        update={
            "unsubscribe_busy_seconds": 0.2,
            "spool_poll_seconds": 0.05,
            "spool_dir": str(tmp_path / "spool"),
        }
    )
    settings = web_settings.model_copy(update={"web": web})
    path = sqlite_file(engine)
    assert path is not None
    with TestClient(create_app(settings, engine)) as client:
        form = _form(client, token) | {"action": "unsubscribe_all"}
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        try:
            response = client.post(f"/p/{token}", data=form)
            assert response.status_code == 200
            assert _choices(session)["status"] == "active"
        finally:
            holder.close()
        wait_for(lambda: _choices(session)["status"] == "unsubscribed")
