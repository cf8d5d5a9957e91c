"""The bounce domain's MX (digest/inbound/server.py) on loopback, with aiosmtplib as the
client, its spool on disk, and a real SQLite (or PostgreSQL) database behind the real
Processor that drains it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import Engine, select

from digest.config import Settings
from digest.db.engine import make_engine
from digest.db.tables import INBOUND_MESSAGE
from digest.inbound.server import BatchProcessor, serve
from digest.inbound.verdicts import Received
from digest.tracking.verp import Verp, VerpKind
from tests.helpers.cli import Cli
from tests.helpers.dblock import write_locked
from tests.helpers.paths import ROOT
from tests.helpers.tls import self_signed

DOMAIN = "bounces.example.org"
DIGEST = Path(sys.executable).with_name("digest")
WAIT = 20.0  # upper bound of every poll; the tests never assert on durations


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The spool in the test's folder, whatever the database (PostgreSQL has no file)."""
    inbound = settings.inbound.model_copy(update={"spool_dir": str(tmp_path / "spool")})
    return settings.model_copy(update={"inbound": inbound})


def _inbound(settings: Settings, **updates: Any) -> Settings:
    inbound = settings.inbound.model_copy(update={"domain": DOMAIN, "port": 0, **updates})
    return settings.model_copy(update={"inbound": inbound})


def _verp(settings: Settings) -> Verp:
    return Verp(settings.web.secret_key, DOMAIN)


def _message(tag: str, size: int = 0) -> bytes:
    head = (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: someone\r\n"
        f"Subject: Undelivered Mail Returned to Sender ({tag})\r\n"
        f"Message-ID: <{tag}@mx.example.net>\r\n\r\n"
    ).encode()
    padding = b"".join(b"x" * 76 + b"\r\n" for _ in range(size // 78 + 1)) if size else b""
    return head + b"The message could not be delivered.\r\n" + padding


@dataclass
class Server:
    host: str
    port: int
    stop: threading.Event
    thread: threading.Thread


@contextmanager
def running(
    settings: Settings, engine: Engine, processor: BatchProcessor | None = None
) -> Iterator[Server]:
    """serve() in a thread of its own, until the test is done."""
    where: list[tuple[str, int]] = []
    failed: list[BaseException] = []
    listening = threading.Event()
    stop = threading.Event()

    def ready(host: str, port: int) -> None:
        where.append((host, port))
        listening.set()

    def target() -> None:
        try:
            serve(settings, engine, ready=ready, stop=stop, processor=processor)
        except BaseException as exc:  # handed to the test below
            failed.append(exc)
            listening.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert listening.wait(WAIT) and not failed, failed
    try:
        yield Server(*where[0], stop, thread)
    finally:
        stop.set()
        thread.join(WAIT)
    assert not thread.is_alive() and not failed, failed


async def _code(call: Awaitable[Any]) -> tuple[int, str]:
    try:
        reply = await call
    except aiosmtplib.SMTPResponseException as exc:
        return exc.code, exc.message
    return reply.code, reply.message


async def _client(port: int, **kwargs: Any) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=WAIT)
    await client.connect(**kwargs)
    await client.ehlo()
    return client


async def _send(
    port: int, recipients: Sequence[str], raw: bytes, *, sender: str = ""
) -> tuple[list[int], int | None]:
    """RCPT codes, and the DATA code (None when no recipient was accepted)."""
    client = await _client(port)
    await client.mail(sender)
    codes = [(await _code(client.rcpt(address)))[0] for address in recipients]
    data = (await _code(client.data(raw)))[0] if 250 in codes else None
    await client.quit()
    return codes, data


def _stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(INBOUND_MESSAGE).order_by(INBOUND_MESSAGE.c.id))
        return [dict(row._mapping) for row in rows]


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_signed_addresses_and_postmaster_are_accepted_spooled_and_processed(
    settings: Settings, engine: Engine
) -> None:
    settings = _inbound(settings)
    verp = _verp(settings)
    bounce, unsubscribe = verp.address(VerpKind.BOUNCE, 41), verp.address(VerpKind.UNSUBSCRIBE, 42)
    with running(settings, engine) as server:
        assert asyncio.run(_send(server.port, [bounce], _message("one"))) == ([250], 250)
        # The drain process stores what the 250 spooled, soon after.
        _until(lambda: len(_stored(engine)) == 1, "the message to be processed")
        assert [row["envelope_to"] for row in _stored(engine)] == [bounce]
        mailto = asyncio.run(_send(server.port, [unsubscribe], _message("two"), sender="r@x.org"))
        assert mailto == ([250], 250)
        people = [f"postmaster@{DOMAIN}", f"abuse@{DOMAIN}", "Postmaster"]
        assert asyncio.run(_send(server.port, people, _message("three"))) == ([250] * 3, 250)
    rows = _stored(engine)  # a stopping server drains what its spool holds first
    assert [row["source"] for row in rows] == ["smtp"] * 3
    assert [row["envelope_from"] for row in rows] == ["", "r@x.org", ""]  # "": <>
    assert rows[0]["raw"] == _message("one")


def test_forged_truncated_foreign_and_relay_recipients_are_refused_at_rcpt(
    settings: Settings, engine: Engine
) -> None:
    settings = _inbound(settings)
    good = _verp(settings).token(VerpKind.BOUNCE, 41)
    forged = good[:-1] + ("a" if good[-1] != "a" else "b")
    refused = [
        f"{forged}@{DOMAIN}",
        f"{good[:-4]}@{DOMAIN}",  # truncated
        f"{good}@example.com",  # our token, another domain
        f"info@{DOMAIN}",  # another local part
        "someone@gmail.com",  # an open-relay attempt
        f"someone%gmail.com@{DOMAIN}",  # the percent hack
        f'"someone@gmail.com"@{DOMAIN}',
    ]

    async def attempt(port: int) -> list[tuple[int, str]]:
        client = await _client(port)
        await client.mail("")
        replies = [await _code(client.rcpt(address)) for address in refused]
        replies.append(await _code(client.data(_message("relay"))))  # no recipient accepted
        await client.quit()
        return replies

    with running(settings, engine) as server:
        replies = asyncio.run(attempt(server.port))
    assert [code for code, _ in replies[:-1]] == [550] * len(refused)
    assert all(text.startswith("5.1.1") for _, text in replies[:-1])
    assert replies[-1][0] == 503
    assert _stored(engine) == []


def test_a_message_over_the_cap_is_refused_552_and_nothing_is_stored(
    settings: Settings, engine: Engine
) -> None:
    settings = _inbound(settings, max_message_bytes=10_000)
    address = _verp(settings).address(VerpKind.BOUNCE, 41)

    async def attempt(port: int) -> tuple[str, tuple[int, str], tuple[int, str], list[int]]:
        client = await _client(port)
        size = client.esmtp_extensions["size"]
        announced = await _code(client.mail("", options=["SIZE=10001"]))
        await client.rset()
        await client.mail("")
        await client.rcpt(address)
        too_big = await _code(client.data(_message("big", size=10_000)))
        # The connection goes on: the next message within the cap is taken.
        await client.mail("")
        codes = [(await _code(client.rcpt(address)))[0], (await _code(client.data(b"ok")))[0]]
        await client.quit()
        return size, announced, too_big, codes

    with running(settings, engine) as server:
        size, announced, too_big, codes = asyncio.run(attempt(server.port))
    assert size == "10000"
    assert announced[0] == 552 and announced[1].startswith("5.3.4")
    assert too_big[0] == 552 and too_big[1].startswith("5.3.4")
    assert codes == [250, 250]
    assert [row["raw"] for row in _stored(engine)] == [b"ok\r\n"]


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server says until it closes the connection (bounded by WAIT)."""
    return await asyncio.wait_for(reader.read(), WAIT)


def test_slow_clients_are_cut_off_by_the_command_and_connection_timeouts(
    settings: Settings, engine: Engine
) -> None:
    fast = _inbound(settings, command_timeout_seconds=0.3, connection_timeout_seconds=3600)
    address = _verp(settings).address(VerpKind.BOUNCE, 41)

    async def idle(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()  # the greeting; then say nothing
        said = await _closed(reader)
        writer.close()
        return said

    async def trickle(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        for line in ("EHLO x", "MAIL FROM:<>", f"RCPT TO:<{address}>", "DATA"):
            writer.write(line.encode() + b"\r\n")
        said = asyncio.ensure_future(_closed(reader))
        while not said.done():  # a line now and then, never the end of the data
            writer.write(b"still here\r\n")
            await asyncio.wait([said], timeout=0.1)
        writer.close()
        return said.result()

    with running(fast, engine) as server:
        assert asyncio.run(idle(server.port)) == b""
        assert b"354" in asyncio.run(trickle(server.port))
    assert _stored(engine) == []

    whole = _inbound(settings, command_timeout_seconds=60, connection_timeout_seconds=0.5)

    async def chatty(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        said = b""
        while not reader.at_eof() and b"421" not in said:
            writer.write(b"NOOP\r\n")
            said += await asyncio.wait_for(reader.readline(), WAIT)
        writer.close()
        return said

    with running(whole, engine) as server:
        assert b"421 4.4.2" in asyncio.run(chatty(server.port))


def test_starttls_with_the_configured_certificate(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, DOMAIN)
    settings = _inbound(settings, tls_cert=str(cert), tls_key=str(key))
    address = _verp(settings).address(VerpKind.BOUNCE, 41)
    trusting = ssl.create_default_context(cafile=str(cert))

    async def over_tls(port: int) -> tuple[bool, bool, int]:
        client = await _client(port)
        offered = client.supports_extension("starttls")
        await client.starttls(server_hostname=DOMAIN, tls_context=trusting)
        await client.ehlo()
        encrypted = client.get_transport_info("sslcontext") is not None
        await client.mail("")
        await client.rcpt(address)
        code = (await _code(client.data(_message("tls"))))[0]
        await client.quit()
        return offered, encrypted, code

    with running(settings, engine) as server:
        assert asyncio.run(over_tls(server.port)) == (True, True, 250)
    assert len(_stored(engine)) == 1


def _spooled(settings: Settings) -> list[Path]:
    new = Path(settings.inbound.spool_dir) / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def test_a_locked_database_keeps_messages_spooled_until_it_frees(
    settings: Settings, engine: Engine
) -> None:
    database = settings.database.model_copy(update={"busy_timeout_seconds": 0.2})
    settings = _inbound(settings.model_copy(update={"database": database}))
    quick = make_engine(settings.database.url, busy_timeout_seconds=0.2)
    address = _verp(settings).address(VerpKind.BOUNCE, 41)
    try:
        with running(settings, quick) as server:
            with write_locked(engine):
                # The sender is answered at once: its message is on disk, not in the database.
                accepted = asyncio.run(_send(server.port, [address], _message("locked")))
                assert accepted == ([250], 250)
                assert len(_spooled(settings)) == 1
                time.sleep(0.5)  # the drain tries, the lock holds: nothing half-written
                assert len(_spooled(settings)) == 1
            _until(lambda: len(_stored(engine)) == 1, "the drain to store it once the lock went")
            _until(lambda: not _spooled(settings), "the spool file to be removed")
    finally:
        quick.dispose()
    assert [row["raw"] for row in _stored(engine)] == [_message("locked")]


def test_a_spool_that_cannot_be_written_answers_451_then_the_retry_is_accepted(
    settings: Settings, engine: Engine
) -> None:
    settings = _inbound(settings)
    address = _verp(settings).address(VerpKind.BOUNCE, 41)
    new = Path(settings.inbound.spool_dir) / "new"
    with running(settings, engine) as server:
        new.rmdir()
        new.write_bytes(b"")  # a file where the folder was: every rename into it fails
        refused = asyncio.run(_send(server.port, [address], _message("unwritable")))
        assert refused == ([250], 451)  # the sending MTA keeps it and tries again
        new.unlink()
        new.mkdir()
        assert asyncio.run(_send(server.port, [address], _message("unwritable"))) == ([250], 250)
    assert [row["raw"] for row in _stored(engine)] == [_message("unwritable")]
    assert not list((Path(settings.inbound.spool_dir) / "tmp").iterdir())


class _Poisoned:
    """A processor for which a message saying "poison" is a bug: any batch holding it fails."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def process(self, batch: Sequence[Received]) -> list[object]:
        if any(b"poison" in received.raw for received in batch):
            raise ValueError("a reader bug")
        self.batches.append(len(batch))
        return []


def test_concurrent_messages_are_each_spooled_and_a_poisonous_one_is_set_aside_alone(
    settings: Settings, engine: Engine
) -> None:
    settings = _inbound(settings)
    verp = _verp(settings)
    poisoned = _Poisoned()
    tags = [f"m{n}" for n in range(10)] + ["poison"]

    async def burst(port: int) -> list[tuple[list[int], int | None]]:
        sends = [
            _send(port, [verp.address(VerpKind.BOUNCE, n + 1)], _message(tag))
            for n, tag in enumerate(tags)
        ]
        return list(await asyncio.gather(*sends))

    with running(settings, engine, poisoned) as server:
        results = asyncio.run(burst(server.port))
        _until(lambda: sum(poisoned.batches) == 10, "the ten others to be processed")
    assert [data for _, data in results] == [250] * 11
    (kept,) = (Path(settings.inbound.spool_dir) / "bad").iterdir()  # for a human, not lost
    assert b"poison" in kept.read_bytes()
    assert not _spooled(settings)


def _digest_inbound(settings: Settings, db_url: str, log: Path) -> subprocess.Popen[bytes]:
    """`digest inbound` on a free port, in a session of its own (killed as a group)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
        "DIGEST_DATABASE__URL": db_url,
        "DIGEST_INBOUND__DOMAIN": DOMAIN,
        "DIGEST_INBOUND__SPOOL_DIR": settings.inbound.spool_dir,
    }
    with log.open("w") as out:
        return subprocess.Popen(
            [str(DIGEST), "inbound", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _port(process: subprocess.Popen[bytes], log: Path) -> int:
    said = "digest inbound: listening on 127.0.0.1:"
    _until(lambda: said in log.read_text() or process.poll() is not None, "start")
    assert said in log.read_text(), log.read_text()
    return int(log.read_text().split(said)[1].split()[0])


def test_a_250_survives_kill_9_right_after_it_and_is_processed_at_the_next_start(
    settings: Settings, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    address = _verp(settings).address(VerpKind.BOUNCE, 41)
    log = tmp_path / "inbound.log"
    process = _digest_inbound(settings, db_url, log)
    try:
        port = _port(process, log)
        with write_locked(engine):  # the drain cannot have stored it before the kill
            assert asyncio.run(_send(port, [address], _message("durable"))) == ([250], 250)
            os.killpg(process.pid, signal.SIGKILL)  # the server and its drain, at once
            process.wait()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert _stored(engine) == []
    assert len(_spooled(settings)) == 1  # on disk, whole, in new/
    again = _digest_inbound(settings, db_url, log)
    try:
        _port(again, log)
        _until(lambda: len(_stored(engine)) == 1, "the leftover to be processed")
        again.send_signal(signal.SIGTERM)
        assert again.wait(WAIT) == 0, log.read_text()
    finally:
        if again.poll() is None:
            os.killpg(again.pid, signal.SIGKILL)
            again.wait()
    assert [row["raw"] for row in _stored(engine)] == [_message("durable")]
    assert not _spooled(settings)


def test_sigterm_during_a_data_answers_that_message_then_exits_0(
    settings: Settings, engine: Engine, db_url: str, tmp_path: Path
) -> None:
    address = _verp(settings).address(VerpKind.BOUNCE, 41)
    log = tmp_path / "inbound.log"
    process = _digest_inbound(settings, db_url, log)
    try:
        port = _port(process, log)
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as client:
            reply = client.makefile("rb")
            reply.readline()
            for line in ("EHLO x", "MAIL FROM:<>", f"RCPT TO:<{address}>", "DATA"):
                client.sendall(line.encode() + b"\r\n")
            while not reply.readline().startswith(b"354"):
                pass
            client.sendall(_message("in flight")[:40])  # half a message when the signal comes
            process.send_signal(signal.SIGTERM)
            _until(lambda: not _accepting(port), "the listener to close")
            client.sendall(_message("in flight")[40:] + b".\r\n")
            assert reply.readline().startswith(b"250 2.0.0")
            assert reply.readline().startswith(b"421")
        assert process.wait(WAIT) == 0, log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # The stopping drain processed what was spooled (the database answered).
    assert [row["raw"] for row in _stored(engine)] == [_message("in flight")]
    assert not _spooled(settings)


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_digest_inbound_without_a_bounce_domain_refuses_to_start(cli: Cli) -> None:
    result = cli("inbound", "--port", "0")
    assert result.exit_code != 0
    assert "[inbound] domain is empty" in result.output
    no_key = cli("--set", f"inbound.domain={DOMAIN}", "--set", "inbound.tls_cert=x.pem", "inbound")
    assert no_key.exit_code != 0 and "tls_cert and inbound.tls_key" in no_key.output
