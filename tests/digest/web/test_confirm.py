"""Double opt-in end to end: form or CLI -> confirmation email -> GET page -> POST -> active."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.errors import NotFound
from digest.send.smtp import SmtpSender
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from subscribers.consent import issue_confirmation, request_subscription
from subscribers.lists import ListSpec, create_list, get_list
from subscribers.people import Consent, Person, describe
from tests.helpers.cli import Cli
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.web import (
    free_socket,
    parse,
    send_digests,
    start_live,
    wait_for,
    with_base_url,
)
from tests.helpers.world import World, add_article

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"


def _optin_list(session: Session, world: World) -> None:
    create_list(
        session,
        ListSpec(
            slug="weekly",
            name="الأسبوعية",
            hour=0,
            double_opt_in=True,
            topic_ids=[world.topic_id("politics")],
        ),
    )
    session.commit()


def _subscription(session: Session, email: str) -> dict[str, object]:
    session.expire_all()
    (found,) = [s for s in describe(session, email)["subscriptions"] if s["list"] == "weekly"]
    return found


def _confirm_url(raw: bytes) -> str:
    message = parse(raw)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    (url,) = re.findall(r"https?://\S+/confirm/\S+", text)
    return str(url)


def test_public_form_to_confirmed_subscription(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _optin_list(session, world)
    sock = free_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with SmtpSink() as sink:
        smtp = web_settings.smtp.model_copy(update={"port": sink.port})
        settings = with_base_url(web_settings, base).model_copy(update={"smtp": smtp})
        live = start_live(settings, engine, sock=sock, sender_factory=lambda: SmtpSender(smtp))
        try:
            with httpx.Client(base_url=base, headers={"User-Agent": AGENT}) as http:
                form = http.get("/subscribe", params={"list": "weekly"})
                assert form.status_code == 200 and 'name="website"' in form.text
                sent = http.post(
                    "/subscribe",
                    data={
                        "list": "weekly",
                        "email": "new@example.org",
                        "name": "منى",
                        "website": "",
                    },
                )
                assert sent.status_code == 200
                wait_for(lambda: len(sink.messages) == 1)
                assert sink.recipients() == ["new@example.org"]
                assert _subscription(session, "new@example.org")["status"] == "unconfirmed"
                url = _confirm_url(sink.messages[0].data)
                assert url.startswith(base + "/confirm/")
                page = http.get(url)  # a scanner or prefetch: confirms nothing
                assert page.status_code == 200
                assert _subscription(session, "new@example.org")["status"] == "unconfirmed"
                match = CSRF.search(page.text)
                assert match is not None
                done = http.post(url, data={"csrf": match.group(1)})
                assert done.status_code == 200
                wait_for(lambda: len(sink.messages) == 2)  # the welcome follows the answer
                welcome = parse(sink.messages[1].data)
                assert sink.recipients() == ["new@example.org"] * 2
                assert welcome["Subject"] == "أهلًا بك في الأسبوعية"
                again = http.post(url, data={"csrf": match.group(1)})
                assert again.status_code == 200  # harmless to repeat
                assert http.get(url).status_code == 200
        finally:
            live.stop()
    assert len(sink.messages) == 2  # one welcome, however often the link is used
    record = _subscription(session, "new@example.org")
    assert record["status"] == "active"
    assert record["source"] == "web"
    assert record["ip"] == "127.0.0.1"
    assert record["user_agent"] == AGENT
    assert record["consent_version"] == settings.web.consent_version
    confirmed = datetime.fromisoformat(str(record["confirmed_at"]))
    assert abs(confirmed - datetime.now(UTC)) < timedelta(minutes=1)


def test_cli_add_mails_the_link_and_an_unconfirmed_address_gets_no_digest(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    client: TestClient,
    cli: Cli,
) -> None:
    _optin_list(session, world)
    with SmtpSink() as sink:
        result = cli.ok(
            "--set",
            f"smtp.port={sink.port}",
            "subscribers",
            "add",
            "late@example.org",
            "-l",
            "weekly",
        )
        assert "confirmation email sent" in result.output
        assert sink.recipients() == ["late@example.org"]
        url = _confirm_url(sink.messages[0].data)
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert client.post(path, data={"csrf": "nope"}).status_code == 400
    assert client.post(path).status_code == 400
    assert _subscription(session, "late@example.org")["status"] == "unconfirmed"
    weekly = World(get_list(session, "weekly"), world.topics)
    add_article(session, world, "خبر", ["politics"], datetime.now(UTC) - timedelta(hours=1))
    assert send_digests(engine, weekly, web_settings, now=datetime.now(UTC)) == {}


def test_honeypot_and_rate_limit(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _optin_list(session, world)
    web = web_settings.web.model_copy(update={"subscribe_rate": 3})
    settings = web_settings.model_copy(update={"web": web})
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port})
        app = create_app(settings, engine, sender_factory=lambda: SmtpSender(smtp))
        with TestClient(app) as client:
            bot = client.post(
                "/subscribe",
                data={"list": "weekly", "email": "bot@example.org", "website": "http://spam"},
            )
            assert bot.status_code == 200  # same page as a person gets
            bad = client.post("/subscribe", data={"list": "weekly", "email": "not-an-address"})
            assert bad.status_code == 400
            assert (
                client.post(
                    "/subscribe", data={"list": "nope", "email": "a@example.org"}
                ).status_code
                == 404
            )
            limited = client.post("/subscribe", data={"list": "weekly", "email": "c@example.org"})
            assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert sink.messages == []
    session.expire_all()
    for address in ("bot@example.org", "c@example.org"):
        try:
            describe(session, address)
        except NotFound:
            continue
        raise AssertionError(f"{address} was stored")


def _unconfirmed(session: Session, settings: Settings, email: str, locale: str) -> str:
    """An unconfirmed subscription to "weekly" (politics only); its confirmation path."""
    request = request_subscription(
        session,
        Person(email, "UTC", name="Sam", locale=locale),
        get_list(session, "weekly"),
        consent=Consent("web", "192.0.2.1", AGENT, settings.web.consent_version),
    )
    ids = request.subscriber_id, request.list_id
    nonce = issue_confirmation(session, *ids, source="web", now=datetime.now(UTC))
    session.commit()
    return f"/confirm/{Signer(settings.web.secret_key).dumps(Purpose.CONFIRM, *ids, nonce)}"


def _confirm(client: TestClient, path: str, *, again: int = 0) -> int:
    """Open the confirmation page and press its button (`again` more times); the status
    code of the last answer."""
    match = CSRF.search(client.get(path).text)
    assert match is not None
    answers = [client.post(path, data={"csrf": match.group(1)}) for _ in range(1 + again)]
    return answers[-1].status_code


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_the_welcome_speaks_the_subscribers_language_and_carries_the_list_headers(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    _optin_list(session, world)
    path = _unconfirmed(session, web_settings, "sam@example.org", "en")
    with SmtpSink() as sink:
        smtp = web_settings.smtp.model_copy(update={"port": sink.port})
        app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(smtp))
        with TestClient(app) as client:
            assert _confirm(client, path, again=2) == 200  # pressed thrice: one welcome
            (welcome,) = [parse(m.data) for m in sink.messages]
            assert sink.recipients() == ["sam@example.org"]
            assert welcome["Subject"] == "Welcome to الأسبوعية"
            assert welcome["Content-Language"] == "en"
            assert welcome["Feedback-ID"].startswith("welcome:weekly:welcome:")
            assert "<weekly." in welcome["List-Id"]
            assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            text = welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            assert "your subscription is confirmed" in text
            assert "Your topics: Politics" in text
            (preferences,) = set(re.findall(r"https?://\S+/p/\S+", text))  # body, footer
            assert client.get(_path(preferences)).status_code == 200
            (unsubscribe,) = re.findall(r"<(https?://[^>]+)>", welcome["List-Unsubscribe"])
            left = client.post(_path(unsubscribe), data={"List-Unsubscribe": "One-Click"})
            assert left.status_code == 200
    assert _subscription(session, "sam@example.org")["status"] == "unsubscribed"


def test_a_welcome_that_cannot_be_sent_leaves_the_confirmation_done(
    engine: Engine,
    session: Session,
    world: World,
    web_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _optin_list(session, world)
    refused = _unconfirmed(session, web_settings, "refused@example.org", "ar")
    with SmtpSink() as sink:
        sink.refuse("refused@example.org", 550)
        smtp = web_settings.smtp.model_copy(update={"port": sink.port})
        app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(smtp))
        with TestClient(app) as client:
            assert _confirm(client, refused) == 200
        assert sink.messages == []
    assert _subscription(session, "refused@example.org")["status"] == "active"
    assert "welcome email of subscriber" in caplog.text and "550" in caplog.text
    caplog.clear()
    down = _unconfirmed(session, web_settings, "down@example.org", "ar")
    closed = free_socket()  # bound, never listening: the SMTP server is down
    smtp = web_settings.smtp.model_copy(update={"port": closed.getsockname()[1]})
    app = create_app(web_settings, engine, sender_factory=lambda: SmtpSender(smtp))
    with TestClient(app) as client:
        assert _confirm(client, down) == 200
    closed.close()
    assert _subscription(session, "down@example.org")["status"] == "active"
    assert "welcome email of subscriber" in caplog.text
