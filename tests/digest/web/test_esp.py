"""Providers' webhooks through the real app on a real database: each provider's documented
sample, signed, suppresses or unsubscribes the recipient of a real delivery; unsigned, badly
signed, stale or malformed payloads are refused and record nothing; a replay counts once."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from digest.config import EspSettings, Settings
from digest.db.engine import make_engine, sqlite_file
from digest.db.tables import INBOUND_EVENT, INBOUND_MESSAGE
from digest.errors import NotFound
from digest.web import create_app
from digest.web.esp import EspState
from subscribers.models import Subscription
from subscribers.people import find_subscriber
from subscribers.suppressions import find_suppression
from tests.helpers.esp import (
    MAILGUN_FAILED,
    MAILGUN_KEY,
    POSTMARK_BOUNCE,
    POSTMARK_SUBSCRIPTION,
    SENDGRID_BATCH,
    SES_BOUNCE,
    SES_COMPLAINT,
    SUBSCRIBE_URL,
    TOPIC,
    SendGridKey,
    SnsKey,
    basic,
    mailgun_body,
    ses_event,
    sns_confirmation,
    sns_notification,
)
from tests.helpers.web import SENT_AT, add_news, deliveries, reader, send_digests, start_live
from tests.helpers.world import World

NOW = SENT_AT + timedelta(minutes=30)
READERS = (
    "jane@example.com",  # SES bounce
    "richard@example.com",  # SES complaint
    "mary@example.com",  # named nowhere: never affected
    "john@example.com",  # Postmark bounce
    "bounced-address@wildbit.com",  # Postmark unsubscribe
    "example@test.com",  # SendGrid batch
    "alice@example.com",  # Mailgun failure
)
SNS = SnsKey()
SENDGRID = SendGridKey()
POSTMARK = basic("hook", "s3cret")


@dataclass
class Sent:
    """The real deliveries (address -> Message-ID) and the app's client."""

    message_ids: dict[str, str]
    client: TestClient


def esp_settings(settings: Settings) -> Settings:
    esp = EspSettings(
        ses_topic_arns=[TOPIC],
        postmark_user="hook",
        postmark_password="s3cret",
        sendgrid_public_key=SENDGRID.public,
        mailgun_signing_key=MAILGUN_KEY,
    )
    inbound = settings.inbound.model_copy(update={"esp": esp})
    return settings.model_copy(update={"inbound": inbound})


def deliver(engine: Engine, session: Session, world: World, settings: Settings) -> dict[str, str]:
    for email in READERS:
        reader(session, world, email, ["politics"])
    add_news(session, world)
    send_digests(engine, world, settings)
    with Session(engine) as read:
        emails = {s.id: s.email for s in (find_subscriber(read, e) for e in READERS)}
    return {emails[d.subscriber_id]: d.message_id or "" for d in deliveries(engine)}


def client_for(settings: Settings, engine: Engine) -> TestClient:
    app = create_app(settings, engine, clock=lambda: NOW)
    SNS.fetched.clear()
    app.state.esp = EspState.build(app.state.web, fetch=SNS.fetch)
    return TestClient(app)


@pytest.fixture
def sent(engine: Engine, session: Session, world: World, web_settings: Settings) -> Iterator[Sent]:
    settings = esp_settings(web_settings)
    message_ids = deliver(engine, session, world, settings)
    with client_for(settings, engine) as client:
        yield Sent(message_ids, client)


def recorded(engine: Engine) -> tuple[int, int]:
    """(inbound events, inbound messages) stored."""
    with engine.connect() as connection:
        events = connection.execute(select(func.count()).select_from(INBOUND_EVENT)).scalar()
        messages = connection.execute(select(func.count()).select_from(INBOUND_MESSAGE)).scalar()
    return int(events or 0), int(messages or 0)


def suppressed(engine: Engine, email: str) -> str | None:
    with Session(engine) as session:
        try:
            return find_suppression(session, email).reason
        except NotFound:
            return None


def subscription(engine: Engine, email: str) -> str:
    with Session(engine) as session:
        subscriber = find_subscriber(session, email)
        query = select(Subscription.status).where(Subscription.subscriber_id == subscriber.id)
        return str(session.execute(query).scalar_one())


def event_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(INBOUND_EVENT).order_by(INBOUND_EVENT.c.id))
        return [dict(row._mapping) for row in rows]


def sendgrid_post(client: TestClient | httpx.Client, raw: bytes, stamp: int) -> httpx.Response:
    return client.post("/esp/sendgrid", content=raw, headers=SENDGRID.headers(raw, stamp))


def test_an_ses_bounce_suppresses_the_recipient_of_the_delivery_once(
    engine: Engine, sent: Sent
) -> None:
    event = ses_event(SES_BOUNCE, message_id=sent.message_ids["jane@example.com"])
    body = SNS.sign(sns_notification(event))
    answer = sent.client.post("/esp/ses", content=body)
    assert (answer.status_code, answer.json()) == (200, {"events": 1, "duplicates": 0})
    assert suppressed(engine, "jane@example.com") == "hard_bounce"
    [row] = event_rows(engine)
    assert (row["kind"], row["source"], row["status"], row["smtp_code"]) == (
        "hard_bounce",
        "ses",
        "5.1.1",
        550,
    )
    assert row["external_id"] == "ses:22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    [jane] = [
        d for d in deliveries(engine) if d.message_id == event["mail"]["commonHeaders"]["messageId"]
    ]
    assert row["delivery_id"] == jane.id
    again = sent.client.post("/esp/ses", content=body)  # SNS sends it again
    assert (again.status_code, again.json()) == (200, {"events": 1, "duplicates": 1})
    assert recorded(engine) == (1, 1)
    assert suppressed(engine, "mary@example.com") is None


def test_an_ses_complaint_found_by_address_suppresses_and_unsubscribes(
    engine: Engine, sent: Sent
) -> None:
    # SES rewrote the Message-ID: the recipient's latest delivery is found by address.
    answer = sent.client.post("/esp/ses", content=SNS.sign(sns_notification(SES_COMPLAINT)))
    assert answer.status_code == 200
    assert suppressed(engine, "richard@example.com") == "complaint"
    assert subscription(engine, "richard@example.com") == "unsubscribed"
    assert subscription(engine, "mary@example.com") == "active"


def test_a_bounce_naming_someone_else_than_the_deliverys_recipient_affects_nobody(
    engine: Engine, sent: Sent
) -> None:
    # Jane's address on Mary's delivery: neither is suppressed.
    event = ses_event(SES_BOUNCE, message_id=sent.message_ids["mary@example.com"])
    answer = sent.client.post("/esp/ses", content=SNS.sign(sns_notification(event)))
    assert answer.status_code == 200
    [row] = event_rows(engine)
    assert row["kind"] == "unknown" and "not the recipient" in row["reason"]
    assert suppressed(engine, "mary@example.com") is None
    assert suppressed(engine, "jane@example.com") is None


def test_an_sns_subscription_is_confirmed(engine: Engine, sent: Sent) -> None:
    answer = sent.client.post("/esp/ses", content=SNS.sign(sns_confirmation()))
    assert answer.status_code == 200
    assert SUBSCRIBE_URL in SNS.fetched
    assert recorded(engine) == (0, 0)


def test_refused_ses_payloads_record_nothing(engine: Engine, sent: Sent) -> None:
    good = json.loads(SNS.sign(sns_notification(SES_BOUNCE)))
    cases = [
        (json.dumps(sns_notification(SES_BOUNCE)), 401),  # unsigned
        (json.dumps({**good, "Message": json.dumps(SES_COMPLAINT)}), 403),  # tampered
        (json.dumps({**good, "TopicArn": TOPIC + "-other"}), 403),
        (json.dumps({**good, "SigningCertURL": "https://evil.example/cert.pem"}), 403),
        ("{not json", 400),
    ]
    for body, status in cases:
        assert sent.client.post("/esp/ses", content=body).status_code == status
    assert recorded(engine) == (0, 0)
    assert suppressed(engine, "jane@example.com") is None
    assert "https://evil.example/cert.pem" not in SNS.fetched


def test_postmark_bounce_and_unsubscribe(engine: Engine, sent: Sent) -> None:
    bounce = json.dumps(POSTMARK_BOUNCE).encode()
    assert sent.client.post("/esp/postmark", content=bounce).status_code == 401
    wrong = basic("hook", "guess")
    assert sent.client.post("/esp/postmark", content=bounce, headers=wrong).status_code == 401
    assert recorded(engine) == (0, 0)
    answer = sent.client.post("/esp/postmark", content=bounce, headers=POSTMARK)
    assert answer.status_code == 200
    assert suppressed(engine, "john@example.com") == "hard_bounce"
    change = json.dumps(POSTMARK_SUBSCRIPTION).encode()
    assert sent.client.post("/esp/postmark", content=change, headers=POSTMARK).status_code == 200
    assert subscription(engine, "bounced-address@wildbit.com") == "unsubscribed"
    assert suppressed(engine, "bounced-address@wildbit.com") is None  # that list only
    replay = sent.client.post("/esp/postmark", content=bounce, headers=POSTMARK)
    assert replay.json() == {"events": 1, "duplicates": 1}
    assert recorded(engine)[0] == 2


def test_sendgrid_signed_batch_and_refusals(engine: Engine, sent: Sent) -> None:
    raw = json.dumps(SENDGRID_BATCH).encode()
    stamp = int(NOW.timestamp())
    assert sent.client.post("/esp/sendgrid", content=raw).status_code == 401
    stale = sendgrid_post(sent.client, raw, stamp - 301)
    forged = sent.client.post(
        "/esp/sendgrid",
        content=raw.replace(b"bounce", b"bounce "),
        headers=SENDGRID.headers(raw, stamp),
    )
    assert (stale.status_code, forged.status_code) == (403, 403)
    assert recorded(engine) == (0, 0)
    answer = sendgrid_post(sent.client, raw, stamp)
    assert (answer.status_code, answer.json()) == (200, {"events": 6, "duplicates": 0})
    assert suppressed(engine, "example@test.com") in ("hard_bounce", "complaint")
    kinds = [row["kind"] for row in event_rows(engine)]
    assert kinds[0] == "delayed" and "unknown" in kinds  # deferred; dropped
    assert sendgrid_post(sent.client, raw, stamp).json() == {"events": 6, "duplicates": 6}
    assert recorded(engine) == (6, 1)  # the batch's bytes stored once


def test_mailgun_failure_replay_and_forgery(engine: Engine, sent: Sent) -> None:
    stamp = int(NOW.timestamp())
    raw = mailgun_body(MAILGUN_FAILED, timestamp=stamp, token="tok-1")
    assert sent.client.post("/esp/mailgun", content=raw).json() == {"events": 1, "duplicates": 0}
    assert suppressed(engine, "alice@example.com") == "hard_bounce"
    assert sent.client.post("/esp/mailgun", content=raw).json()["duplicates"] == 1
    forged = json.loads(raw)
    forged["event-data"] = {**MAILGUN_FAILED, "id": "other", "recipient": "mary@example.com"}
    assert sent.client.post("/esp/mailgun", content=json.dumps(forged)).status_code == 403
    wrong = mailgun_body(MAILGUN_FAILED, timestamp=stamp, token="tok-2", key="key-guess")
    stale = mailgun_body(MAILGUN_FAILED, timestamp=stamp - 301, token="tok-3")
    unsigned = json.dumps({"event-data": MAILGUN_FAILED})
    for body, status in ((wrong, 403), (stale, 403), (unsigned, 401), (b"[]", 400)):
        assert sent.client.post("/esp/mailgun", content=body).status_code == status
    assert recorded(engine) == (1, 1)
    assert suppressed(engine, "mary@example.com") is None


def test_a_payload_over_the_cap_is_refused_unread(engine: Engine, sent: Sent) -> None:
    huge = b"[" + b" " * 2_100_000 + b"]"
    answer = sent.client.post("/esp/mailgun", content=huge)
    assert answer.status_code == 413
    assert recorded(engine) == (0, 0)


def test_every_endpoint_is_off_until_configured(web_settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(web_settings, engine)) as client:
        for provider in ("ses", "postmark", "sendgrid", "mailgun"):
            assert client.post(f"/esp/{provider}", content=b"{}").status_code == 404
    assert recorded(engine) == (0, 0)


def test_an_unusable_sendgrid_key_asks_sendgrid_to_send_again(
    web_settings: Settings, engine: Engine
) -> None:
    esp = EspSettings(sendgrid_public_key="not a key")
    settings = web_settings.model_copy(
        update={"inbound": web_settings.inbound.model_copy(update={"esp": esp})}
    )
    with TestClient(create_app(settings, engine)) as client:
        answer = client.post("/esp/sendgrid", content=b"[]")
    assert answer.status_code == 503 and "Retry-After" in answer.headers


@pytest.mark.sqlite_only
def test_a_locked_database_answers_503_and_the_provider_sends_again(
    session: Session, world: World, web_settings: Settings, engine: Engine
) -> None:
    settings = esp_settings(web_settings)
    deliver(engine, session, world, settings)
    quick = make_engine(settings.database.url, busy_timeout_seconds=0.2)
    settings = settings.model_copy(
        update={"database": settings.database.model_copy(update={"busy_timeout_seconds": 0.2})}
    )
    raw = mailgun_body(MAILGUN_FAILED, timestamp=int(NOW.timestamp()), token="tok-busy")
    path = sqlite_file(engine)
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with client_for(settings, quick) as client:
            holder.execute("BEGIN EXCLUSIVE")
            busy = client.post("/esp/mailgun", content=raw)
            assert (busy.status_code, busy.headers["Retry-After"]) == (503, "60")
            holder.rollback()
            assert client.post("/esp/mailgun", content=raw).status_code == 200
    finally:
        holder.close()
        quick.dispose()
    assert suppressed(engine, "alice@example.com") == "hard_bounce"


def test_sendgrid_and_mailgun_through_uvicorn(
    engine: Engine, session: Session, world: World, web_settings: Settings
) -> None:
    settings = esp_settings(web_settings)
    deliver(engine, session, world, settings)
    live = start_live(settings, engine)
    try:
        with httpx.Client(base_url=live.url) as http:
            stamp = int(time.time())  # the live app keeps the real clock
            raw = json.dumps(SENDGRID_BATCH).encode()
            assert sendgrid_post(http, raw, stamp).json() == {"events": 6, "duplicates": 0}
            body = mailgun_body(MAILGUN_FAILED, timestamp=stamp, token="tok-live")
            assert http.post("/esp/mailgun", content=body).status_code == 200
            for _ in range(3):
                assert http.post("/esp/mailgun", content=body).json()["duplicates"] == 1
    finally:
        live.stop()
    assert suppressed(engine, "alice@example.com") == "hard_bounce"
    assert recorded(engine) == (7, 2)
