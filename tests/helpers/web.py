"""Web test helpers: a real digest send, message parsing, the app under a real uvicorn."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from digest.config import Settings
from digest.db.models import Delivery, Event
from digest.send.dispatcher import Dispatcher, DispatchOptions, RunHooks
from digest.send.outcome import Sender
from digest.send.smtp import SmtpSender
from digest.web import create_app
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.world import World, add_article, add_reader

SENT_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def reader(session: Session, world: World, email_: str, topics: list[str], **kw: Any) -> int:
    add_reader(session, world, email_, topics, timezone="UTC", **kw)
    from subscribers.people import find_subscriber

    return find_subscriber(session, email_).id or 0


def with_base_url(settings: Settings, base_url: str) -> Settings:
    web = settings.web.model_copy(update={"base_url": base_url})
    return settings.model_copy(update={"web": web})


def send_digests(
    engine: Engine, world: World, settings: Settings, *, now: datetime = SENT_AT
) -> dict[str, EmailMessage]:
    """Run a real `digest send` through an SMTP sink; recipient -> parsed message."""
    with SmtpSink() as sink:
        smtp = settings.smtp.model_copy(update={"port": sink.port, "connections": 2})
        options = DispatchOptions.from_settings(settings.model_copy(update={"smtp": smtp}))

        async def go() -> None:
            async with SmtpSender(smtp) as sender:
                await Dispatcher(
                    engine, world.daily, sender, options, RunHooks(clock=lambda: now)
                ).run()

        asyncio.run(go())
        return {m.rcpt_tos[0]: parse(m.data) for m in sink.messages}


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def one_click_url(message: EmailMessage) -> str:
    """The https (here http, loopback) URL of the List-Unsubscribe header."""
    return str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")


def links(html: str, kind: str) -> list[str]:
    """Every distinct `/{kind}/...` URL of an HTML body, in order."""
    found = re.findall(rf'(?:href|src)="([^"]*/{kind}/[^"]+)"', html)
    return list(dict.fromkeys(found))


def add_news(session: Session, world: World, *, at: datetime = SENT_AT) -> list[int]:
    return [
        add_article(
            session, world, "انتخابات بلدية في الرياض", ["politics"], at - timedelta(hours=1)
        ),
        add_article(session, world, "أسعار النفط ترتفع", ["economy"], at - timedelta(hours=2)),
        add_article(session, world, "نهائي كأس الخليج", ["sports"], at - timedelta(hours=3)),
    ]


def event_count(engine: Engine, **where: Any) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Event)
        for key, value in where.items():
            query = query.where(getattr(Event, key) == value)
        return int(session.exec(query).one())


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def deliveries(engine: Engine) -> list[Delivery]:
    with Session(engine) as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)))  # type: ignore[arg-type]


@dataclass
class LiveServer:
    """The app under a real uvicorn on 127.0.0.1 (its own thread and event loop)."""

    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def start_live(
    settings: Settings,
    engine: Engine,
    *,
    sock: socket.socket | None = None,
    sender_factory: Callable[[], Sender] | None = None,
) -> LiveServer:
    """Serve on `sock` (its port already in `settings.web.base_url`) until `stop()`."""
    sock = sock or free_socket()
    app = create_app(settings, engine, sender_factory=sender_factory)
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15)
    port = sock.getsockname()[1]
    return LiveServer(app, server, thread, f"http://127.0.0.1:{port}")
