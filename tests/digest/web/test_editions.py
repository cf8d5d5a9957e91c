"""The editor pages over HTTP: login without enumeration, session cookie, CSRF, recorded
actions, refused input that changes nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from digest.db.models import Edition, EditorAction, InboundKind
from digest.editions.editors import add_editor
from digest.editions.states import hold_sending
from digest.inbound.brake import ACTOR as BRAKE
from digest.web import editor_auth
from digest.web.context import WebContext
from tests.helpers.outbox import NOW
from tests.helpers.returns import add_event, sent_edition
from tests.helpers.web import add_news, reader
from tests.helpers.world import World

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
EDITOR, PASSWORD = "editor@news.example.org", "a long enough password"


@pytest.fixture
def newsroom(session: Session, world: World) -> list[int]:
    reader(session, world, "reem@example.org", ["politics"])
    reader(session, world, "omar@example.org", ["economy"])
    ids = add_news(session, world)
    add_editor(session, EDITOR, PASSWORD)
    session.commit()
    return ids


def _csrf(text: str) -> str:
    found = CSRF.search(text)
    assert found is not None
    return found.group(1)


def _login(client: TestClient, email: str = EDITOR, password: str = PASSWORD) -> object:
    token = _csrf(client.get("/editor/login").text)
    return client.post("/editor/login", data={"csrf": token, "email": email, "password": password})


def _edition(client: TestClient) -> tuple[int, str]:
    """Today's edition id and the CSRF token of its page."""
    home = client.get("/editor")
    assert home.status_code == 200
    edition_id = int(re.findall(r'data-edition="(\d+)"', home.text)[0])
    page = client.get(f"/editor/editions/{edition_id}")
    assert page.status_code == 200
    return edition_id, _csrf(page.text)


def _state(engine: Engine, edition_id: int) -> tuple[object, ...]:
    with Session(engine) as session:
        edition = session.get(Edition, edition_id)
        assert edition is not None
        count = len(session.exec(select(EditorAction)).all())
        return edition.status, edition.pinned_ids, edition.note, edition.subjects, count


def test_pages_need_a_login(client: TestClient, newsroom: list[int]) -> None:
    for path in ("/editor", "/editor/editions/1"):
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/editor/login")
    answer = client.post("/editor/editions/1", data={"action": "approve"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/editor/login")


def test_wrong_password_and_unknown_address_look_the_same(
    client: TestClient, newsroom: list[int]
) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    web: WebContext = client.app.state.web  # type: ignore[attr-defined]
    web.sleep = record
    answers = []
    for email, password in ((EDITOR, "wrong password!"), ("nobody@example.org", PASSWORD)):
        answers.append(_login(client, email, password))
    assert waits == [editor_auth.LOGIN_DELAY] * 2  # both slowed down alike
    first, second = answers
    assert first.status_code == second.status_code == 400  # type: ignore[attr-defined]
    assert "البريد الإلكتروني أو كلمة المرور غير صحيحة." in first.text  # type: ignore[attr-defined]
    strip = re.compile(r'(name="csrf" value="[^"]+"|value="[^"]*@[^"]*")')
    assert strip.sub("", first.text) == strip.sub("", second.text)  # type: ignore[attr-defined]
    assert "set-cookie" not in first.headers  # type: ignore[attr-defined]


def test_login_sets_a_strict_http_only_cookie_and_logout_ends_it(
    client: TestClient, newsroom: list[int]
) -> None:
    answer = _login(client)
    assert answer.status_code == 303  # type: ignore[attr-defined]
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/editor" in cookie
    home = client.get("/editor")
    assert home.status_code == 200 and '<html lang="ar" dir="rtl">' in home.text
    assert "Content-Security-Policy" in home.headers
    client.post("/editor/logout", data={"csrf": _csrf(home.text)})
    assert client.get("/editor").status_code == 303


def test_a_new_password_ends_old_sessions(
    client: TestClient, newsroom: list[int], engine: Engine
) -> None:
    _login(client)
    assert client.get("/editor").status_code == 200
    from digest.editions.editors import _HASHER, find_editor

    with Session(engine) as session:
        editor = find_editor(session, EDITOR)
        assert editor is not None
        editor.password_hash = _HASHER.hash("another long password")
        session.add(editor)
        session.commit()
    assert client.get("/editor").status_code == 303


def test_a_form_without_the_session_token_changes_nothing(
    client: TestClient, newsroom: list[int], engine: Engine
) -> None:
    _login(client)
    edition_id, _token = _edition(client)
    before = _state(engine, edition_id)
    answer = client.post(
        f"/editor/editions/{edition_id}",
        data={"csrf": "forged", "action": "pin", "article": str(newsroom[0])},
    )
    assert answer.status_code == 400
    assert _state(engine, edition_id) == before


def test_actions_are_recorded_with_the_editor_and_shown(
    client: TestClient, newsroom: list[int], engine: Engine
) -> None:
    _login(client)
    edition_id, token = _edition(client)
    for data in (
        {"action": "pin", "article": str(newsroom[1]), "top": "1"},
        {"action": "subject", "text": "عاجل: {top_title}", "locale": "ar"},
        {"action": "note", "text": "صباح الخير"},
        {"action": "order", "topic": ["economy", "politics"]},
        {"action": "approve"},
    ):
        answer = client.post(f"/editor/editions/{edition_id}", data={"csrf": token, **data})
        assert answer.status_code == 303, answer.text
    with Session(engine) as session:
        actions = session.exec(select(EditorAction)).all()
        edition = session.get(Edition, edition_id)
        assert edition is not None
    assert [(a.actor, a.action) for a in actions] == [
        (EDITOR, "pin"),
        (EDITOR, "subject"),
        (EDITOR, "note"),
        (EDITOR, "order"),
        (EDITOR, "approve"),
    ]
    assert (edition.status, edition.top_ids, edition.note) == (
        "approved",
        [newsroom[1]],
        "صباح الخير",
    )
    page = client.get(f"/editor/editions/{edition_id}?segment=1").text
    assert page.count(EDITOR) >= 6  # header + five history lines
    assert "عاجل: أسعار النفط ترتفع" in page  # the top story leads and names the subject


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "note", "text": "<script>alert(1)</script>"}, "كلمة المحرر نص عادي"),
        ({"action": "subject", "text": "س" * 500}, "العنوان طويل جدًا"),
        ({"action": "subject", "text": "سطر\r\nBcc: x@example.org"}, "العنوان سطر واحد"),
        ({"action": "pin", "article": "999"}, "لا مقال بهذا الرقم"),
        ({"action": "pin", "article": "x"}, "تعذّر إجراء هذا التغيير"),
        ({"action": "release"}, "هذا العدد غير موقوف"),
        ({"action": "explode"}, "تعذّر إجراء هذا التغيير"),
    ],
)
def test_bad_input_gets_a_clear_message_and_changes_nothing(
    client: TestClient, newsroom: list[int], engine: Engine, data: dict[str, str], message: str
) -> None:
    _login(client)
    edition_id, token = _edition(client)
    before = _state(engine, edition_id)
    answer = client.post(f"/editor/editions/{edition_id}", data={"csrf": token, **data})
    assert answer.status_code in (400, 404)
    assert message in answer.text
    assert _state(engine, edition_id) == before


def test_the_edition_page_shows_what_came_back_and_the_brakes_pause(
    client: TestClient, engine: Engine, session: Session
) -> None:
    sent = sent_edition(engine, session, n=4)
    add_event(session, sent, InboundKind.HARD_BOUNCE, "r0@example.org")
    add_event(session, sent, InboundKind.HARD_BOUNCE, "r0@example.org", minutes=1)
    add_event(session, sent, InboundKind.COMPLAINT, "r1@example.org")
    add_event(session, sent, InboundKind.UNSUBSCRIBE, "r2@example.org")
    add_event(session, sent, InboundKind.AUTO_REPLY, "r3@example.org")
    add_editor(session, EDITOR, PASSWORD)
    session.commit()
    _login(client)
    page = f"/editor/editions/{sent.edition_id}"
    text = client.get(page).text
    rows = dict(re.findall(r'<tr data-kind="(\w+)"><th>[^<]*</th><td>([^<]*)</td>', text))
    assert rows == {"hard_bounce": "١", "soft_bounce": "٠", "complaint": "١",
                    "mailto_unsubscribe": "١"}  # fmt: skip
    assert "٢٥.٠٠٪" in text  # 1 of 4 delivered, in the page's digits
    assert 'id="brake"' not in text
    detail = "inbound brake: hard-bounce rate 25.00% (1 of 4 sent) is over 5.00%"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"UPDATE edition SET status = 'sending' WHERE id = {sent.edition_id}"
        )
        hold_sending(connection, [sent.edition_id], actor=BRAKE, detail=detail, now=NOW)
    text = client.get(page).text
    brake = re.search(r'<p class="error" role="alert" id="brake">([^<]*)</p>', text)
    assert brake is not None and detail in brake.group(1)
    assert 'id="release"' in text  # the way out is on the page
    answer = client.post(page, data={"csrf": _csrf(text), "action": "release"})
    assert answer.status_code == 303
    assert 'id="brake"' not in client.get(page).text
