"""Editor sessions over a real uvicorn: logout ends the session server-side, the clearing
cookie keeps its flags, the login form is bound to a pre-session, ids are bounded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import EditorSession
from digest.editions.editors import add_editor
from digest.web.editor_auth import COOKIE, PRE_COOKIE
from tests.helpers.web import LiveServer, add_news, free_socket, reader, start_live, with_base_url
from tests.helpers.world import World

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EDITOR, PASSWORD = "editor@news.example.org", "a long enough password"


@pytest.fixture
def live(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> Iterator[LiveServer]:
    reader(session, world, "reem@example.org", ["politics"])
    add_news(session, world)
    add_editor(session, EDITOR, PASSWORD)
    session.commit()
    sock = free_socket()
    settings = with_base_url(web_settings, f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = start_live(settings, engine, sock=sock)
    yield server
    server.stop()


def _csrf(text: str) -> str:
    found = CSRF.search(text)
    assert found is not None
    return found.group(1)


def _signed_in(live: LiveServer) -> httpx.Client:
    browser = httpx.Client(base_url=live.url, follow_redirects=False)
    token = _csrf(browser.get("/editor/login").text)
    answer = browser.post(
        "/editor/login", data={"csrf": token, "email": EDITOR, "password": PASSWORD}
    )
    assert answer.status_code == 303 and COOKIE in browser.cookies
    return browser


def test_logout_ends_the_session_for_the_old_cookie_too(live: LiveServer, engine: Engine) -> None:
    # Regression (issue 14, item 11): the cookie was only signed, so after logout a copy of
    # it kept working for 12 hours.
    browser = _signed_in(live)
    stolen = browser.cookies[COOKIE]
    home = browser.get("/editor")
    assert home.status_code == 200
    answer = browser.post("/editor/logout", data={"csrf": _csrf(home.text)})
    assert (answer.status_code, answer.headers["location"]) == (303, "/editor/login")
    clearing = answer.headers["set-cookie"]
    assert clearing.startswith(f"{COOKIE}=") and "Max-Age=0" in clearing
    assert "HttpOnly" in clearing and "SameSite=strict" in clearing and "Path=/editor" in clearing
    replay = httpx.get(f"{live.url}/editor", cookies={COOKIE: stolen}, follow_redirects=False)
    assert (replay.status_code, replay.headers["location"]) == (303, "/editor/login")
    with Session(engine) as session:
        (row,) = session.exec(select(EditorSession)).all()
    assert row.revoked_at is not None
    assert row.token_hash == hashlib.sha256(stolen.encode()).hexdigest() != stolen


def test_the_login_form_token_is_bound_to_its_pre_session(live: LiveServer) -> None:
    # Regression (issue 14, item 11): any login token worked from any browser, so another
    # site could post our login form with its own account (login CSRF).
    attacker = httpx.Client(base_url=live.url, follow_redirects=False)
    token = _csrf(attacker.get("/editor/login").text)
    assert PRE_COOKIE in attacker.cookies
    victim = httpx.Client(base_url=live.url, follow_redirects=False)
    victim.get("/editor/login")  # the victim's own pre-session
    fields = {"csrf": token, "email": EDITOR, "password": PASSWORD}
    for browser in (victim, httpx.Client(base_url=live.url, follow_redirects=False)):
        answer = browser.post("/editor/login", data=fields)
        assert answer.status_code == 400 and COOKIE not in browser.cookies
    assert attacker.post("/editor/login", data=fields).status_code == 303


def test_ids_past_any_row_are_404_never_500(live: LiveServer) -> None:
    # Regression (issue 14, item 14): `/editor/editions/<20 digits>` overflowed SQLite's
    # INTEGER and answered 500.
    browser = _signed_in(live)
    home = browser.get("/editor")
    csrf = _csrf(home.text)
    edition_id = int(re.findall(r'data-edition="(\d+)"', home.text)[0])
    for huge in ("9" * 20, str(2**31), str(2**63), "-1", "0"):
        assert browser.get(f"/editor/editions/{huge}").status_code == 404, huge
        answer = browser.post(f"/editor/editions/{huge}", data={"csrf": csrf, "action": "hold"})
        assert answer.status_code == 404, huge
    for article in ("9" * 20, str(2**31), "-5", "١٢", "1e9"):
        answer = browser.post(
            f"/editor/editions/{edition_id}",
            data={"csrf": csrf, "action": "pin", "article": article},
        )
        assert answer.status_code == 400 and "<html" in answer.text, article
