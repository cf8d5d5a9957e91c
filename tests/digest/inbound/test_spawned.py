"""The spool's drain in a child process (digest/inbound/spawned.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select

from digest.config import Settings
from digest.db.tables import INBOUND_MESSAGE
from digest.inbound.spawned import SpawnedDrain
from digest.inbound.spool import Spool
from digest.inbound.verdicts import Received, Source

WAIT = 60.0  # upper bound of every poll (a spawned child imports the engine first)


def _stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(INBOUND_MESSAGE)).one()[0])


def _mail(tag: str) -> Received:
    raw = f"From: someone@example.net\r\nSubject: {tag}\r\n\r\nhello\r\n".encode()
    return Received(raw, Source.SMTP, envelope_to=("postmaster@bounces.example.org",))


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_child_drains_the_spool_and_a_dead_child_is_started_again(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.write([_mail("left over")])  # from an earlier run: drained first
    url = engine.url.render_as_string(hide_password=False)
    drain = SpawnedDrain(settings, url, spool.directory)
    drain.start()
    try:
        _until(lambda: _stored(engine) == 1, "the leftover to be stored")
        spool.write([_mail("one"), _mail("two")])
        drain.wake()
        _until(lambda: _stored(engine) == 3, "the new file to be stored")
        drain._process.kill()  # the child dies (OOM, a crash): the spool keeps its files
        drain._process.join()
        spool.write([_mail("three")])
        drain.wake()  # never blocks, whatever the killed child was doing (no shared lock)
        drain.check()  # the server's loop notices and starts another
        _until(lambda: _stored(engine) == 4, "a new child to store it")
        spool.write([_mail("four")])
    finally:
        drain.close()  # a stopping child drains what waits first
        spool.close()
    assert _stored(engine) == 5
    assert spool.waiting() == []
