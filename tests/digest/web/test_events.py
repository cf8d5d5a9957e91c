"""Events: batched off the request path, none lost at shutdown (SIGTERM), kept while DB fails."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from digest.config import Settings
from digest.db.models import EventKind
from digest.tracking.tokens import Purpose, Signer
from digest.web import create_app
from digest.web.events import EventWriter, PendingEvent
from tests.helpers.paths import ROOT
from tests.helpers.web import (
    add_news,
    deliveries,
    event_count,
    free_socket,
    reader,
    send_digests,
    wait_for,
)
from tests.helpers.world import World


def _open_token(engine: Engine, session: Session, world: World, settings: Settings) -> str:
    reader(session, world, "reem@example.org", ["politics"])
    add_news(session, world)
    send_digests(engine, world, settings)
    (delivery,) = deliveries(engine)
    return Signer(settings.web.secret_key).dumps(Purpose.OPEN, delivery.id or 0)


def test_events_wait_for_the_flush_and_none_is_lost_when_the_app_stops(
    engine: Engine, session: Session, world: World, settings: Settings
) -> None:
    token = _open_token(engine, session, world, settings)
    slow = settings.model_copy(
        update={"web": settings.web.model_copy(update={"event_flush_seconds": 60})}
    )
    with TestClient(create_app(slow, engine)) as client:
        for _ in range(120):
            assert client.get(f"/o/{token}.gif").status_code == 200
        assert event_count(engine) == 0  # nothing written on the request path
    assert event_count(engine, kind="open") == 120  # lifespan shutdown wrote them all


def test_a_full_batch_is_written_without_waiting_for_the_interval(
    engine: Engine, session: Session, world: World, settings: Settings
) -> None:
    token = _open_token(engine, session, world, settings)
    web = settings.web.model_copy(update={"event_flush_seconds": 60, "event_batch": 10})
    with TestClient(create_app(settings.model_copy(update={"web": web}), engine)) as client:
        for _ in range(10):
            client.get(f"/o/{token}.gif")
        wait_for(lambda: event_count(engine) == 10)


def test_events_are_kept_while_the_database_fails(
    engine: Engine,
    session: Session,
    world: World,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _open_token(engine, session, world, settings)
    (delivery,) = deliveries(engine)
    writer = EventWriter(engine, flush_seconds=60)
    real_write = writer.write
    failures = iter([True, True, False])

    def flaky(events: list[PendingEvent]) -> int:
        if next(failures):
            raise OSError("disk I/O error")
        return real_write(events)

    monkeypatch.setattr(writer, "write", flaky)

    async def scenario() -> None:
        await writer.start()
        for _ in range(5):
            writer.record(PendingEvent(EventKind.OPEN, datetime.now(UTC), delivery_id=delivery.id))
        assert not await writer.flush()
        writer.record(PendingEvent(EventKind.OPEN, datetime.now(UTC), delivery_id=delivery.id))
        assert not await writer.flush()
        assert writer.pending == 6
        await writer.stop()

    asyncio.run(scenario())
    assert event_count(engine) == 6 and writer.dropped == 0


def test_events_of_an_erased_subscriber_are_dropped_not_fatal(
    engine: Engine, session: Session, world: World, settings: Settings
) -> None:
    _open_token(engine, session, world, settings)
    (delivery,) = deliveries(engine)
    writer = EventWriter(engine)
    events = [
        PendingEvent(EventKind.OPEN, datetime.now(UTC), delivery_id=delivery.id),
        PendingEvent(EventKind.OPEN, datetime.now(UTC), delivery_id=99999),
        PendingEvent(EventKind.UNSUBSCRIBE, datetime.now(UTC), subscriber_id=99999, list_id=1),
    ]
    assert writer.write(events) == 1


def test_sigterm_flushes_every_open_of_a_real_digest_serve(
    db_url: str, engine: Engine, session: Session, world: World, settings: Settings
) -> None:
    # Scenario: `digest serve` gets a burst of opens, then SIGTERM (a deploy): none is lost.
    token = _open_token(engine, session, world, settings)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "DIGEST_DATABASE__URL": db_url,
        "DIGEST_WEB__EVENT_FLUSH_SECONDS": "60",  # only the shutdown writes
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("digest")), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/o/{token}.gif"

        def up() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=30)
        with httpx.Client() as http:
            for _ in range(299):
                assert http.get(url).status_code == 200
        assert event_count(engine) == 0
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert server.returncode in (0, -signal.SIGTERM), err
    assert b"Application shutdown complete" in out  # the log goes to stdout ([log])
    assert event_count(engine, kind="open") == 300
