"""`digest inbound`: the bounce domain's MX (aiosmtpd). It takes mail only for signed VERP
addresses and the configured mailboxes, answers 250 only once a message is in the spool on disk
(fsynced; digest/inbound/spool.py), from which a drain process stores and applies it, and on
SIGTERM stops listening, finishes the messages being received, then returns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax
from sqlalchemy import Engine

from digest.config import InboundSettings, Settings
from digest.errors import ConfigError
from digest.inbound.batches import BatchWriter
from digest.inbound.gate import Gate, Refused
from digest.inbound.process import InboundUnavailable
from digest.inbound.spawned import SpawnedDrain
from digest.inbound.spool import Spool, SpoolBusy, SpoolUnwritable, spool_dir
from digest.inbound.spool_drain import Drain, ThreadedDrain
from digest.inbound.verdicts import Received, Source
from digest.text.controls import clean_line

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100  # per message; a bounce has one, a mailto unsubscribe one
MAX_CONNECTIONS = 200  # each may hold a message of up to max_message_bytes in memory
# RFC 5321 4.5.3.2.6: a client waits 10 minutes for the reply to the end of DATA; spooling
# (a write and two fsyncs, shared by the messages that arrived meanwhile) never nears it.
DATA_REPLY_WAIT = 600.0
_POLL = 0.05

NO_SUCH_USER = "550 5.1.1 No such mailbox here"
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"
TOO_BUSY = "421 4.3.2 Too many connections, try again later"
TOO_LONG = "421 4.4.2 Connection time limit exceeded"
# aiosmtpd's own size replies, given their RFC 3463 enhanced codes.
_ENHANCED = {
    "552 Error: message size exceeds fixed maximum message size": (
        "552 5.3.4 Message size exceeds fixed maximum message size"
    ),
    "552 Error: Too much mail data": "552 5.3.4 Message too big for this server",
}

# `<local@domain> params` with a dot-atom local part and a plain domain: what aiosmtpd's
# parser returns for it, without its cost (it builds a class per call; a fifth of the event
# loop's Python time went there). Anything else goes to aiosmtpd's parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(
    rf"[ \t]*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"(?:[ \t]+([^ \t(].*)?)?",
    re.S,
)

Stop = threading.Event | asyncio.Event
Ready = Callable[[str, int], None]


class Drainer(Protocol):
    """The spool's drain, in a child process or a thread."""

    def start(self) -> None: ...

    def wake(self) -> None: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


class BatchProcessor(Protocol):
    """What the server needs of `digest.inbound.process.Processor`."""

    def process(self, batch: Sequence[Received]) -> Sequence[object]: ...


@dataclass
class _State:
    """What the connections of one server share."""

    gate: Gate
    writer: BatchWriter
    inbound: InboundSettings
    drainer: Drainer
    connections: set[_Smtp] = field(default_factory=set)
    stopping: bool = False


class _Handler:
    """aiosmtpd hooks: who we take mail for, and the 250 that waits for the spool's fsync."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return TOO_MANY_RECIPIENTS
        try:
            admitted = self.state.gate.admit(address)
        except Refused as exc:
            log.info("inbound: refused RCPT %s: %s", clean_line(address[:200]), exc.why)
            return NO_SUCH_USER
        envelope.rcpt_tos.append(admitted.address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        sender = envelope.mail_from or ""
        received = Received(
            raw=bytes(envelope.original_content or b""),
            source=Source.SMTP,
            envelope_from="" if sender == "<>" else sender,  # "": the null reverse-path
            envelope_to=tuple(envelope.rcpt_tos),
        )
        if isinstance(server, _Smtp):
            server.awaiting_storage()
        # Cancelled when the client leaves first: the writer then skips the message (the
        # client had no 250, so it sends it again).
        return await self.state.writer.submit_here(received)


class _Smtp(SMTP):
    """aiosmtpd's protocol with a connection count, a whole-connection deadline, enhanced
    status codes for the size refusals, and a shutdown that lets a DATA finish."""

    def __init__(self, state: _State, **kwargs: Any) -> None:
        super().__init__(_Handler(state), **kwargs)
        self._state = state
        self._deadline: asyncio.TimerHandle | None = None
        self._in_data = False
        self._expired = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._deadline is None  # called again after STARTTLS
        super().connection_made(transport)
        if first:
            self._state.connections.add(self)
            limit = self._state.inbound.connection_timeout_seconds
            self._deadline = self.loop.call_later(limit, self._expire)

    def connection_lost(self, error: Exception | None) -> None:
        self._state.connections.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._state.stopping or len(self._state.connections) > MAX_CONNECTIONS:
            await self.push(SHUTTING_DOWN if self._state.stopping else TOO_BUSY)
            self._close()
            return
        await super()._handle_client()

    async def push(self, status: str) -> None:  # type: ignore[override]
        await super().push(_ENHANCED.get(status, status))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        address = plain.group(1)
        limit = self.local_part_limit
        if limit and len(address.rpartition("@")[0]) > limit:
            return None, None
        return address, plain.group(2) or ""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._in_data = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self._in_data = False
            self._reset_timeout()  # back from DATA_REPLY_WAIT to the command timeout
        if self._state.stopping or self._expired:
            await self.push(TOO_LONG if self._expired else SHUTTING_DOWN)
            self._close()

    def awaiting_storage(self) -> None:
        """The message is in: its reply waits for the spool, not for the client."""
        self._reset_timeout(DATA_REPLY_WAIT)

    def close_if_idle(self) -> None:
        """On shutdown: close now unless a message is being received or stored."""
        if not self._in_data:
            self._say_and_close(SHUTTING_DOWN)

    def _expire(self) -> None:
        if self._in_data:
            self._expired = True  # closed once this message is answered
        else:
            self._say_and_close(TOO_LONG)

    def _say_and_close(self, reply: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._writer.write(reply.encode("ascii") + b"\r\n")
            self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def tls_context(inbound: InboundSettings) -> ssl.SSLContext | None:
    """The STARTTLS context of `[inbound] tls_cert`/`tls_key`; None when neither is set."""
    if not inbound.tls_cert and not inbound.tls_key:
        return None
    if not (inbound.tls_cert and inbound.tls_key):
        raise ConfigError("inbound.tls_cert and inbound.tls_key go together: set both or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(inbound.tls_cert, inbound.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"inbound.tls_cert / tls_key cannot be loaded ({exc}): give a PEM certificate "
            "and its private key"
        ) from None
    return context


def serve(
    settings: Settings,
    engine: Engine,
    *,
    ready: Ready | None = None,
    stop: Stop | None = None,
    processor: BatchProcessor | None = None,
) -> None:
    """Run the bounce domain's MX on `[inbound] host:port` until SIGTERM/SIGINT (in the main
    thread) or `stop`; `ready(host, port)` is called once it listens (port 0: any free one).
    ConfigError when `[inbound] domain` is empty, the TLS files cannot be loaded, or another
    server holds the spool (`[inbound] spool_dir`).

    Accepted messages are spooled; by default a child process (another core than the event
    loop's) drains the spool through a Processor on `engine`'s database, leftovers of an
    earlier run first; a `processor` given drains it in a thread."""
    gate = Gate.from_settings(settings)
    context = tls_context(settings.inbound)
    # aiosmtpd logs every command at INFO, addresses included: its warnings are enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    spool = Spool(spool_dir(settings, engine))
    try:
        spool.open()
    except SpoolBusy as exc:
        raise ConfigError(f"{exc}: give each server its own inbound.spool_dir") from None
    with contextlib.ExitStack() as stack:
        stack.callback(spool.close)
        drainer = _drainer(settings, engine, spool, processor)
        drainer.start()
        stack.callback(drainer.close)  # after the writer's: the last files are drained too

        def keep(batch: Sequence[Received]) -> None:
            spool.write(batch)
            drainer.wake()

        writer = BatchWriter(keep, unavailable=(SpoolUnwritable,))
        writer.start()
        stack.callback(writer.close)
        state = _State(gate, writer, settings.inbound, drainer)
        asyncio.run(_serve(state, context, ready, stop))


def _drainer(
    settings: Settings, engine: Engine, spool: Spool, processor: BatchProcessor | None
) -> Drainer:
    if processor is None:
        url = engine.url.render_as_string(hide_password=False)
        return SpawnedDrain(settings, url, spool.directory)
    drain = Drain(spool, processor.process, unavailable=(InboundUnavailable,))
    return ThreadedDrain(drain)


async def _serve(
    state: _State, context: ssl.SSLContext | None, ready: Ready | None, stop: Stop | None
) -> None:
    loop = asyncio.get_running_loop()
    inbound = state.inbound

    def factory() -> _Smtp:
        return _Smtp(
            state,
            hostname=state.gate.domain,
            ident="ESMTP",
            data_size_limit=inbound.max_message_bytes,
            timeout=inbound.command_timeout_seconds,
            enable_SMTPUTF8=True,
            tls_context=context,
            loop=loop,
        )

    listener = await loop.create_server(factory, host=inbound.host, port=inbound.port)
    host, port = listener.sockets[0].getsockname()[:2]
    log.info("inbound: listening on %s:%s for %s", host, port, state.gate.domain)
    if ready is not None:
        ready(str(host), int(port))
    requested = asyncio.Event()
    with _signals(loop, requested):
        while not requested.is_set() and not (stop is not None and stop.is_set()):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(requested.wait(), _POLL)
            state.drainer.check()
    log.info("inbound: stopping; finishing %d connection(s)", len(state.connections))
    listener.close()
    await _drain(state)
    await listener.wait_closed()


async def _drain(state: _State) -> None:
    """Close idle connections; let those receiving or storing a message answer it first."""
    state.stopping = True
    for connection in list(state.connections):
        connection.close_if_idle()
    # A DATA in progress ends within the command timeout, its storing within DATA_REPLY_WAIT.
    deadline = time.monotonic() + state.inbound.command_timeout_seconds + DATA_REPLY_WAIT
    while state.connections and time.monotonic() < deadline:
        await asyncio.sleep(_POLL)
    for connection in list(state.connections):
        connection._close()


@contextlib.contextmanager
def _signals(loop: asyncio.AbstractEventLoop, requested: asyncio.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `requested` (only the main thread can take signals)."""
    numbers = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    for number in numbers:
        loop.add_signal_handler(number, requested.set)
    try:
        yield
    finally:
        for number in numbers:
            loop.remove_signal_handler(number)
