"""A small SMTP client for the send path (RFC 5321): one connection, its session set up once
(greeting, EHLO, STARTTLS, AUTH), then one transaction per message.

Why not aiosmtplib: its DATA re-scans every body with two regular expressions (line ends,
then dot-stuffing) and parses both addresses again for each message; on a 57 KB digest that
was about 0.8 ms of CPU a message, more than building and signing it (send bench). The
bodies given here are already CRLF-ended, and `Transaction.ready` says whether they are
already dot-stuffed: then they are written as they are, in one write with the final dot.

When the server offers PIPELINING (RFC 2920) MAIL, RCPT and DATA go out in one write and
their three replies are read together; otherwise one command at a time. Every reply is
checked in order, so a refusal at any step is reported at that step (`SmtpReplyError.stage`).
A 421 reply means the server is closing: the connection is closed here too.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections import deque
from dataclasses import dataclass, field

from digest.errors import DigestError

_REPLY_LINE = re.compile(rb"(\d{3})([ -])?(.*)")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_STUFF = re.compile(rb"(?m)^\.")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>]")  # nothing that could end or split a command
_MAX_REPLY_LINES = 200


class SmtpError(DigestError):
    """The session could not go on: something the server said or did not say; `stage` is
    the step it happened at ("connect", "MAIL", "RCPT", "DATA", or "")."""

    def __init__(self, message: str, stage: str = "") -> None:
        super().__init__(message)
        self.stage = stage


class SmtpReplyError(SmtpError):
    """The server answered `code` (not the one expected) at `stage`."""

    def __init__(self, code: int, message: str, stage: str = "") -> None:
        super().__init__(f"{code} {message}", stage)
        self.code = code
        self.message = message


class SmtpAuthError(SmtpReplyError):
    """The server refused our login."""


class SmtpDisconnected(SmtpError):
    """The connection was lost (or closed by a 421) before the answer came."""


class SmtpTimeout(SmtpError, TimeoutError):
    """No answer within the timeout; the connection is closed (its state is unknown)."""


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    message: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


@dataclass(frozen=True)
class SessionOptions:
    """How to open a session: implicit TLS (`tls`, port 465) or `starttls`, an optional
    login, the name we give in EHLO, the seconds any answer may take."""

    host: str
    port: int
    timeout: float = 60.0
    tls: bool = False
    starttls: bool = False
    username: str = ""
    password: str = ""
    local_hostname: str = "localhost"
    tls_context: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class Transaction:
    """One message. `ready`: `data` is CRLF-ended throughout and no line of it starts with a
    dot, so it is written as it is; otherwise its line ends are made CRLF and its dots
    doubled here. `options` go on MAIL FROM (SIZE, BODY, SMTPUTF8)."""

    sender: str
    recipient: str
    data: bytes
    options: tuple[str, ...] = ()
    ready: bool = False
    utf8: bool = False  # the addresses need SMTPUTF8: commands are written in UTF-8


class _Replies(asyncio.Protocol):
    """Collects whole replies from the server, in order, for whoever waits for them."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._ready: deque[Reply] = deque()
        self._waiting: deque[asyncio.Future[Reply]] = deque()
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._lost is None:  # after a failure nothing more is taken as an answer
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > 65536:
                    self._fail(SmtpError("the server sent a reply line longer than 64 KB"))
                return
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            self._line(line)

    def _line(self, line: bytes) -> None:
        match = _REPLY_LINE.fullmatch(line)
        if match is None or len(self._lines) > _MAX_REPLY_LINES:
            self._fail(SmtpError(f"the server sent something that is not a reply: {line[:80]!r}"))
            return
        self._lines.append(match.group(3))
        if match.group(2) == b"-":
            return
        text = b"\n".join(self._lines).decode("utf-8", "replace")
        self._lines = []
        reply = Reply(int(match.group(1)), text)
        if not self._waiting:
            self._ready.append(reply)
            return
        waiter = self._waiting.popleft()
        if not waiter.done():  # cancelled: its reply is dropped, not given to the next one
            waiter.set_result(reply)

    def expire(self, seconds: float) -> None:
        """The answer is late: the session is given up (its state is unknown)."""
        self._fail(SmtpTimeout(f"no answer within {seconds:g}s"))

    def _fail(self, error: BaseException) -> None:
        if self._lost is None:
            self._lost = error
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._lost is None:
            self._lost = SmtpDisconnected(f"the server closed the connection ({exc or 'EOF'})")
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(self._lost)

    @property
    def unasked(self) -> bool:
        """Bytes or replies came that no command asked for: the order of replies is lost."""
        return bool(self._ready or self._buffer or self._lines)

    def expect(self) -> asyncio.Future[Reply]:
        """The next reply (queued already, or to come)."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if self._ready:
            future.set_result(self._ready.popleft())
        elif self._lost is not None:
            future.set_exception(self._lost)
        else:
            self._waiting.append(future)
        return future


@dataclass
class SmtpConnection:
    """One SMTP session; `open` sets it up, `send` runs a transaction, `close` ends it."""

    options: SessionOptions
    extensions: dict[str, str] = field(default_factory=dict)
    _protocol: _Replies | None = None

    @property
    def is_connected(self) -> bool:
        protocol = self._protocol
        return (
            protocol is not None
            and not protocol.closed
            and protocol.transport is not None
            and not protocol.transport.is_closing()
        )

    def supports(self, extension: str) -> bool:
        return extension.upper() in self.extensions

    async def open(self) -> None:
        """Connect, read the greeting, EHLO (HELO if refused), STARTTLS and AUTH as set.
        Raises OSError, ssl.SSLError, SmtpTimeout, SmtpAuthError, SmtpReplyError or
        SmtpError (stage "connect"); the connection is then closed."""
        options = self.options
        loop = asyncio.get_running_loop()
        context = (options.tls_context or ssl.create_default_context()) if options.tls else None
        try:
            async with asyncio.timeout(options.timeout):
                _, protocol = await loop.create_connection(
                    _Replies,
                    options.host,
                    options.port,
                    ssl=context,
                    server_hostname=options.host if context else None,
                )
        except TimeoutError:
            raise SmtpTimeout(f"no connection within {options.timeout:g}s", "connect") from None
        self._protocol = protocol
        try:
            (greeting,) = await self._replies([protocol.expect()], "connect")
            _check(greeting, 220, "connect")
            await self._greet()
            if options.starttls:
                await self._starttls()
            if options.username:
                await self._login()
        except SmtpError as error:
            self.close()
            error.stage = "connect"
            raise
        except BaseException:
            self.close()
            raise

    async def _greet(self) -> None:
        name = self.options.local_hostname
        reply = await self.command(f"EHLO {name}")
        self.extensions = {}
        if reply.code != 250:
            _check(await self.command(f"HELO {name}"), 250, "connect")
            return
        for line in reply.message.split("\n")[1:]:
            keyword, _, parameters = line.strip().partition(" ")
            self.extensions[keyword.upper()] = parameters

    async def _starttls(self) -> None:
        if not self.supports("STARTTLS"):
            raise SmtpError("the server does not offer STARTTLS", "connect")
        _check(await self.command("STARTTLS"), 220, "connect")
        protocol = self._live("connect")
        if protocol.unasked:  # sent in clear text after the 220: an injection, never an answer
            raise SmtpError("the server sent more than its 220 to STARTTLS", "connect")
        assert protocol.transport is not None
        transport = await asyncio.get_running_loop().start_tls(
            protocol.transport,
            protocol,
            self.options.tls_context or ssl.create_default_context(),
            server_hostname=self.options.host,
            ssl_handshake_timeout=self.options.timeout,
        )
        assert isinstance(transport, asyncio.Transport)
        protocol.transport = transport
        await self._greet()

    async def _login(self) -> None:
        mechanisms = self.extensions.get("AUTH", "").upper().split()
        user, password = self.options.username, self.options.password
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
            reply = await self.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            reply = await self.command("AUTH LOGIN")
            for value in (user, password):
                if reply.code != 334:
                    break
                reply = await self.command(base64.b64encode(value.encode()).decode("ascii"))
        else:
            offered = " ".join(mechanisms) or "none"
            raise SmtpError(f"the server offers no login we can use (AUTH: {offered})", "connect")
        if reply.code != 235:
            raise SmtpAuthError(reply.code, reply.message, "connect")

    async def send(self, transaction: Transaction) -> Reply:
        """MAIL, RCPT, DATA and the message; the DATA reply (2xx). Raises SmtpReplyError at
        the step refused (a transaction left open: the caller sends `reset`), or
        SmtpDisconnected / SmtpTimeout with the step they cut (the connection is closed).
        ValueError for an address that cannot go into a command (nothing written)."""
        for address in (transaction.sender, transaction.recipient):
            if _FORBIDDEN.search(address):
                raise ValueError(f"address {address!r} cannot go into an SMTP command")
        extra = "".join(" " + option for option in transaction.options)
        encoding = "utf-8" if transaction.utf8 else "ascii"
        mail = f"MAIL FROM:<{transaction.sender}>{extra}\r\n".encode(encoding)
        rcpt = f"RCPT TO:<{transaction.recipient}>\r\n".encode(encoding)
        data = transaction.data
        if not transaction.ready:  # the slow path: any line ends, dots not yet doubled
            data = _STUFF.sub(b"..", _LINE_END.sub(b"\r\n", data))
        protocol = self._live("MAIL")
        if protocol.unasked:  # an answer nobody asked for would answer MAIL: start afresh
            self.close()
            raise SmtpDisconnected("the server sent a reply nobody asked for", "MAIL")
        try:
            return await self._transaction(protocol, mail, rcpt, data)
        except SmtpReplyError:
            raise  # answered: the session is in a known state (the caller resets it)
        except BaseException:  # lost, late, cancelled: what the server expects is unknown
            self.close()
            raise

    async def _transaction(
        self, protocol: _Replies, mail: bytes, rcpt: bytes, data: bytes
    ) -> Reply:
        if self.supports("PIPELINING"):
            waiters = [protocol.expect(), protocol.expect(), protocol.expect()]
            self._write(mail + rcpt + b"DATA\r\n", "MAIL")
            first, second, third = await self._replies(
                waiters, "MAIL", "RCPT", "DATA", expected=(250, 250, 354)
            )
            if third.code == 354 and not (first.code == 250 and second.code in (250, 251)):
                # RFC 2920 §3.1: DATA was accepted with no valid recipient: send no message.
                self._write(b".\r\n", "DATA")
                await self._replies([protocol.expect()], "DATA")
            _check(first, 250, "MAIL")
            _check(second, 250, "RCPT")
            _check(third, 354, "DATA")
        else:
            for line, stage, code in (
                (mail, "MAIL", 250),
                (rcpt, "RCPT", 250),
                (b"DATA\r\n", "DATA", 354),
            ):
                waiter = protocol.expect()
                self._write(line, stage)
                _check((await self._replies([waiter], stage))[0], code, stage)
        waiter = protocol.expect()
        self._write(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"), "DATA")
        return _check((await self._replies([waiter], "DATA"))[0], 250, "DATA")

    async def reset(self) -> None:
        _check(await self.command("RSET"), 250, "")

    async def quit(self) -> None:
        try:
            if self.is_connected:
                await self.command("QUIT")
        finally:
            self.close()

    def close(self) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def command(self, line: str) -> Reply:
        """Write one command line (CRLF added) and wait for its reply."""
        waiter = self._live("").expect()
        self._write(line.encode("ascii") + b"\r\n", "")
        (reply,) = await self._replies([waiter], "")
        return reply

    async def _replies(
        self, waiters: list[asyncio.Future[Reply]], *stages: str, expected: tuple[int, ...] = ()
    ) -> list[Reply]:
        """Wait for `waiters` in order, all within one timeout; a lost connection or a late
        answer is raised with the stage of the reply it cut off, unless a reply before it
        already refused (not its `expected` code): that refusal is raised (a 421 to RCPT
        and then the connection closed is a 421 at RCPT)."""
        protocol = self._live(stages[0])
        timeout = self.options.timeout
        timer = asyncio.get_running_loop().call_later(timeout, protocol.expire, timeout)
        replies: list[Reply] = []
        try:
            for waiter in waiters:
                replies.append(await waiter)
        except SmtpError as error:
            _settle(waiters)
            for reply, code, stage in zip(replies, expected, stages, strict=False):
                _check(reply, code, stage)
            error.stage = stages[min(len(replies), len(stages) - 1)]
            raise
        except BaseException:
            _settle(waiters)
            raise
        finally:
            timer.cancel()
        if any(reply.code == 421 for reply in replies):
            self.close()
        return replies

    def _live(self, stage: str) -> _Replies:
        protocol = self._protocol
        if protocol is None or not self.is_connected:
            raise SmtpDisconnected("not connected", stage)
        return protocol

    def _write(self, data: bytes, stage: str) -> None:
        transport = self._live(stage).transport
        assert transport is not None
        transport.write(data)


def _settle(waiters: list[asyncio.Future[Reply]]) -> None:
    """The waiters nobody will await: their errors read, the others cancelled (asyncio
    would log each unread error as never retrieved)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.cancel()
        elif not waiter.cancelled():
            waiter.exception()


def _check(reply: Reply, code: int, stage: str) -> Reply:
    """`reply` if it has `code` (251 counts as 250), else SmtpReplyError at `stage`."""
    if reply.code != code and not (code == 250 and reply.code == 251):
        raise SmtpReplyError(reply.code, reply.message, stage)
    return reply
