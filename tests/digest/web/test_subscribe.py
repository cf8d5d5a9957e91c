"""The public form: the same answer after the same work whatever the address, confirmations
mailed from the queue (retried while the relay is down), no name in them, a cooldown."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from digest.config import Settings
from digest.send.confirm_queue import QueueWorker, Tally
from digest.send.outcome import Sender
from digest.send.smtp import SmtpSender
from digest.web import create_app
from subscribers.consent import withdraw
from subscribers.lists import ListSpec, create_list
from subscribers.people import Consent, Person, describe, find_subscriber, subscribe, suppress
from subscribers.requests import waiting
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import free_socket, parse
from tests.helpers.world import World

SPAM = "Claim your prize at https://prize.example \u202egnp.exe"


def _lists(session: Session, world: World) -> None:
    """ "weekly" (double opt-in) with an active, a withdrawn and a suppressed reader."""
    weekly = create_list(session, ListSpec(slug="weekly", name="Weekly", double_opt_in=True))
    for email in ("active@example.org", "left@example.org", "blocked@example.org"):
        subscribe(session, Person(email, "UTC"), weekly, consent=Consent(confirmed=True))
    left = describe(session, "left@example.org")
    assert left["subscriptions"][0]["status"] == "active"
    withdraw(
        session,
        subscriber_id=find_subscriber(session, "left@example.org").id or 0,
        list_id=weekly.id or 0,
    )
    suppress(session, "blocked@example.org")
    session.commit()


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement the engine runs meanwhile (text without parameters)."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(re.sub(r"\s+", " ", statement))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _post(client: TestClient, email: str, name: str = "") -> tuple[int, str]:
    answer = client.post("/subscribe", data={"list": "weekly", "email": email, "name": name})
    return answer.status_code, answer.text


def _drain(
    engine: Engine, settings: Settings, sender: Callable[[], Sender], now: datetime
) -> Tally:
    return asyncio.run(QueueWorker(engine, settings, sender).run_once(now))


def test_same_answer_and_same_database_work_whatever_the_address(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _lists(session, world)
    closed = free_socket()  # the relay is down: the answer must not tell
    smtp = web_settings.smtp.model_copy(update={"port": closed.getsockname()[1]})
    app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(smtp))
    client = TestClient(app)  # no lifespan: the worker does not run, so only the form works
    _post(client, "warm@example.org")  # first request of the app: caches warmed
    answers, work = [], []
    for email in (
        "new@example.org",
        "active@example.org",
        "left@example.org",
        "blocked@example.org",
    ):
        with _statements(engine) as seen:
            answers.append(_post(client, email))
        work.append(seen)
    assert {status for status, _ in answers} == {200}
    assert len({text for _, text in answers}) == 1
    assert all(w == work[0] for w in work) and any("INSERT" in s for s in work[0])
    with Session(engine) as check:
        assert waiting(check) == 5
    closed.close()


def test_relay_down_then_back_the_confirmation_goes_out_once(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _lists(session, world)
    closed = free_socket()
    down = web_settings.smtp.model_copy(update={"port": closed.getsockname()[1]})
    app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(down))
    assert _post(TestClient(app), "new@example.org", name=SPAM)[0] == 200
    now = datetime.now(UTC)
    tally = _drain(engine, web_settings, lambda: SmtpSender(down), now)
    assert (tally.sent, tally.retried) == (0, 1)
    closed.close()
    with SmtpSink() as sink:
        up = web_settings.smtp.model_copy(update={"port": sink.port})
        soon = _drain(engine, web_settings, lambda: SmtpSender(up), now + timedelta(seconds=1))
        assert soon.sent == 0 and sink.messages == []  # not due yet: it waits its backoff
        later = now + timedelta(minutes=5)
        assert _drain(engine, web_settings, lambda: SmtpSender(up), later).sent == 1
        (received,) = sink.messages
    message = parse(received.data)
    assert received.rcpt_tos == ("new@example.org",)
    assert str(message["To"]) == "new@example.org"  # the bare address: no name from the form
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "prize" not in body and "prize" not in str(message) and "\u202e" not in body
    with Session(engine) as check:
        assert waiting(check) == 0


def test_one_confirmation_per_address_per_hour_whatever_the_ip(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _lists(session, world)
    with SmtpSink() as sink:
        smtp = web_settings.smtp.model_copy(update={"port": sink.port})
        app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(smtp))
        sender = lambda: SmtpSender(smtp)  # noqa: E731
        for number, client_ip in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
            client = TestClient(app, client=(client_ip, 50000))
            assert _post(client, "Left@Example.org")[0] == 200  # the withdrawn reader
            now = datetime.now(UTC)
            _drain(engine, web_settings, sender, now + timedelta(minutes=number))
        assert len(sink.messages) == 1
        _post(TestClient(app), "left@example.org")
        _drain(engine, web_settings, sender, datetime.now(UTC) + timedelta(minutes=61))
        assert len(sink.messages) == 2
    session.expire_all()
    assert describe(session, "left@example.org")["subscriptions"][0]["status"] == "unsubscribed"
