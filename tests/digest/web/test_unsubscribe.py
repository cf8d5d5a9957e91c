"""Unsubscribe: GET changes nothing, one-click POST leaves one list, bad input changes nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.engine import sqlite_file
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from digest.web.spool import Spool, SpooledUnsubscribe
from subscribers.lists import ListSpec, create_list
from subscribers.models import Subscription
from subscribers.people import Consent, Person, remove, subscribe
from tests.helpers.web import event_count, reader, wait_for
from tests.helpers.world import World

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _setup(session: Session, world: World, settings: Settings) -> tuple[str, int]:
    """reem on two lists; the unsubscribe token of the daily one."""
    sid = reader(session, world, "reem@example.org", ["politics"])
    weekly = create_list(session, ListSpec(slug="weekly", name="الأسبوعية", cadence="weekly"))
    subscribe(session, Person("reem@example.org", "UTC"), weekly, consent=Consent(confirmed=True))
    session.commit()
    token = Signer(settings.web.secret_key).dumps(Purpose.UNSUBSCRIBE, sid, world.daily.id or 0)
    return token, sid


def _statuses(engine: Engine) -> dict[int, tuple[str, Any]]:
    with Session(engine) as session:
        return {s.list_id: (s.status, s.withdrawn_at) for s in session.exec(select(Subscription))}


def test_get_shows_a_button_and_a_get_flood_changes_nothing(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    token, _sid = _setup(session, world, web_settings)
    before = _statuses(engine)
    for agent in ("Mozilla/5.0 BingPreview", "Barracuda", "Mozilla/5.0", "curl/8"):
        for _ in range(50):
            response = client.get(f"/u/{token}", headers={"User-Agent": agent})
            assert response.status_code == 200
        client.head(f"/u/{token}", headers={"User-Agent": agent})
    assert 'method="post"' in response.text and 'name="List-Unsubscribe"' in response.text
    assert 'dir="rtl"' in response.text and "النشرة اليومية" in response.text
    assert _statuses(engine) == before
    assert all(status == "active" for status, _ in before.values())
    assert event_count(engine) == 0


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_leaves_that_list_only_and_is_idempotent(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    client: TestClient,
    encoding: str,
) -> None:
    token, _sid = _setup(session, world, web_settings)
    for _ in range(3):
        if encoding == "urlencoded":
            response = client.post(f"/u/{token}", data=ONE_CLICK)
        else:
            response = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
        assert response.status_code == 200  # never a redirect
        assert "set-cookie" not in response.headers
    statuses = _statuses(engine)
    assert statuses[world.daily.id or 0][0] == "unsubscribed"
    assert statuses[world.daily.id or 0][1] is not None
    assert [status for lid, (status, _) in statuses.items() if lid != world.daily.id] == ["active"]
    wait_for(lambda: event_count(engine, kind="unsubscribe") == 1)  # counted once


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=Two-Clicks", "application/x-www-form-urlencoded"),
        (b"unsubscribe=yes", "application/x-www-form-urlencoded"),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
        (b"List-Unsubscribe=One-Click", "text/plain"),
        (
            b'--x\r\nContent-Disposition: form-data; name="List-Unsub',
            "multipart/form-data; boundary=x",
        ),
        (b"%%%%=&&&", "application/x-www-form-urlencoded"),
    ],
)
def test_a_post_without_the_one_click_body_changes_nothing(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    client: TestClient,
    body: bytes,
    content_type: str,
) -> None:
    token, _sid = _setup(session, world, web_settings)
    before = _statuses(engine)
    response = client.post(f"/u/{token}", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "<html" in response.text and "Traceback" not in response.text
    assert _statuses(engine) == before


def test_a_huge_body_gets_413_and_changes_nothing(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    token, _sid = _setup(session, world, web_settings)
    before = _statuses(engine)
    huge = b"List-Unsubscribe=One-Click&pad=" + b"x" * 2_000_000
    response = client.post(
        f"/u/{token}", content=huge, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    # Without a Content-Length (chunked), the limit holds while reading.
    chunks = iter([b"List-Unsubscribe=One-Click&pad=", *[b"x" * 65536] * 40])
    response = client.post(
        f"/u/{token}",
        content=chunks,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert _statuses(engine) == before


def test_invalid_token_and_erased_subscriber_get_the_same_answer(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    token, _sid = _setup(session, world, web_settings)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    bad_get = client.get(f"/u/{forged}")
    bad_post = client.post(f"/u/{forged}", data=ONE_CLICK)
    remove(session, "reem@example.org")
    session.commit()
    gone_get = client.get(f"/u/{token}")
    gone_post = client.post(f"/u/{token}", data=ONE_CLICK)
    assert bad_get.status_code == gone_get.status_code == 400
    assert bad_post.status_code == gone_post.status_code == 400
    assert bad_get.text == gone_get.text == bad_post.text == gone_post.text
    assert "reem" not in bad_get.text


def test_the_page_follows_the_subscriber_language(
    engine: Engine, session: Session, world: World, web_settings: Settings, client: TestClient
) -> None:
    sid = reader(session, world, "jane@example.org", ["politics"], locale="en")
    token = Signer(web_settings.web.secret_key).dumps(Purpose.UNSUBSCRIBE, sid, world.daily.id or 0)
    page = client.get(f"/u/{token}").text
    assert '<html lang="en" dir="ltr">' in page and "Unsubscribe from" in page


_SHARED: dict[int, tuple[str, TestClient]] = {}


@hsettings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_tampered_unsubscribe_tokens_change_nothing(
    engine: Engine, session: Session, world: World, web_settings: Settings, data: st.DataObject
) -> None:
    # Property: forged, truncated, extended or re-signed tokens never unsubscribe anyone.
    if id(engine) not in _SHARED:
        _SHARED.clear()
        token, _sid = _setup(session, world, web_settings)
        _SHARED[id(engine)] = (token, TestClient(create_app(web_settings, engine)))
    token, app = _SHARED[id(engine)]
    before = _statuses(engine)
    other_key = Signer("another-secret").dumps(Purpose.UNSUBSCRIBE, 1, world.daily.id or 0)
    other_salt = Signer(web_settings.web.secret_key).dumps(Purpose.PREFERENCES, 1, 1)
    position = data.draw(st.integers(0, len(token) - 1))
    mutated = data.draw(
        st.sampled_from(
            [
                token[:position],
                token[:position] + "x" + token[position + 1 :],
                token + data.draw(st.text("0123456789.-_abc", min_size=1, max_size=4)),
                other_key,
                other_salt,
                data.draw(st.text("0123456789.-_abcXYZ", min_size=1, max_size=60)),
            ]
        )
    )
    if mutated == token or not mutated:
        return
    response = app.post(f"/u/{mutated}", data=ONE_CLICK)
    assert response.status_code in (400, 404)
    assert _statuses(engine) == before


def _spooling(settings: Settings, tmp_path: Path) -> Settings:
    web = settings.web.model_copy(
        update={
            "unsubscribe_busy_seconds": 0.2,
            "spool_poll_seconds": 0.05,
            "spool_dir": str(tmp_path / "spool"),
        }
    )
    return settings.model_copy(update={"web": web})


@contextmanager
def _locked(engine: Engine) -> Iterator[sqlite3.Connection]:
    """Another connection holds the SQLite file's write lock (BEGIN EXCLUSIVE)."""
    path = sqlite_file(engine)
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield holder
    finally:
        holder.close()


@pytest.mark.sqlite_only
def test_a_one_click_post_on_a_locked_database_is_accepted_and_applied_later(
    engine: Engine, session: Session, world: World, web_settings: Settings, tmp_path: Path
) -> None:
    token, sid = _setup(session, world, web_settings)
    settings = _spooling(web_settings, tmp_path)
    with TestClient(create_app(settings, engine)) as client, _locked(engine) as holder:
        answer = client.post(f"/u/{token}", data=ONE_CLICK)
        assert answer.status_code == 200  # within the short busy timeout, not 30 s
        assert _statuses(engine)[world.daily.id or 0][0] == "active"  # not yet applied
        assert list((tmp_path / "spool").glob("unsubscribe-*"))  # but durably spooled
        holder.rollback()
        wait_for(lambda: _statuses(engine)[world.daily.id or 0][0] == "unsubscribed")
        wait_for(lambda: event_count(engine, kind="unsubscribe", subscriber_id=sid) == 1)
    assert [s for s, _ in _statuses(engine).values()].count("active") == 1  # weekly stays
    assert not list((tmp_path / "spool").iterdir())


def test_spooled_unsubscribes_left_by_a_stopped_app_are_applied_on_start(
    engine: Engine, session: Session, world: World, web_settings: Settings, tmp_path: Path
) -> None:
    _token, sid = _setup(session, world, web_settings)
    settings = _spooling(web_settings, tmp_path)
    spool = Spool(tmp_path / "spool")
    at = datetime.now(UTC).isoformat()
    spool.append(SpooledUnsubscribe(sid, world.daily.id or 0, True, at, "192.0.2.9", "ua"))
    spool.append(SpooledUnsubscribe(sid, world.daily.id or 0, True, at, "192.0.2.9", "ua"))
    with TestClient(create_app(settings, engine)):
        wait_for(lambda: {s for s, _ in _statuses(engine).values()} == {"unsubscribed"})
    assert not list((tmp_path / "spool").iterdir())
