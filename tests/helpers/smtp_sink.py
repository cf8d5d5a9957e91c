"""A scriptable in-process SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Sync tests run it in its own thread (aiosmtpd's threaded Controller)::

    with SmtpSink() as sink:
        sink.refuse("greylisted@example.com", 451)
        sink.refuse("gone@example.com", 550)
        sink.drop("flaky@example.com")            # close the connection mid-DATA, once
        ... send to 127.0.0.1:sink.port ...
        assert sink.recipients() == [...]

Async code can also run it in the current event loop: ``async with SmtpSink() as sink: ...``.

Every accepted message is kept as a `Received` (envelope sender, recipients, raw bytes,
connection, login, TLS); `sessions()` counts the connections that carried at least one
transaction, so tests can check that a pool reuses its connections.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Stage = Literal["MAIL", "RCPT", "DATA"]
EVERYONE = "*"  # `refuse(EVERYONE, ...)`: the rule applies to every address without one

DEFAULT_REPLIES = {
    421: "421 4.7.28 Too many messages from your IP, slow down",  # and the connection closes
    450: "450 4.2.1 Rate limited, try again later",
    451: "451 4.7.1 Greylisted, please try again later",
    452: "452 4.2.2 Mailbox full",
    550: "550 5.1.1 No such user",
    552: "552 5.2.2 Mailbox quota exceeded",
    554: "554 5.7.1 Message rejected",
}


@dataclass(frozen=True)
class Received:
    """One message the sink accepted (answered 250 to its DATA)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    peer: tuple[str, int]  # the client end of the connection that carried it
    login: str | None  # the AUTH login, if any
    tls: bool  # carried over TLS (STARTTLS or implicit)


@dataclass
class _Rule:
    stage: Stage
    reply: str | None  # None: drop the connection instead of answering
    times: int | None  # None: forever
    delay: float


class _Handler:
    """aiosmtpd hooks; runs in the sink's event loop, shares state with the test via a lock."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """What the sink offers: PIPELINING (aiosmtpd reads commands in order, so it serves
        pipelined clients as it is) and 8BITMIME as asked."""
        session.host_name = hostname
        offered = [line for line in responses if line != "250-8BITMIME" or self.sink.eight_bit]
        if self.sink.pipelining:
            offered.insert(1, "250-PIPELINING")
        return offered

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        with self.sink._lock:
            self.sink._peers.add(_peer(session))
        rule = self.sink._take_rule(address, "MAIL")
        if rule is not None:
            return await _apply(rule, server)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        rule = self.sink._take_rule(address, "RCPT")
        if rule is not None:
            return await _apply(rule, server)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            rule = self.sink._take_rule(address, "DATA")
            if rule is not None:
                if rule.reply is None:
                    with self.sink._lock:
                        self.sink._dropped.append(address)
                return await _apply(rule, server)
        received = Received(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=bytes(envelope.original_content or b""),
            peer=_peer(session),
            login=_login(session),
            tls=_over_tls(server, session),
        )
        with self.sink._lock:
            self.sink._messages.append(received)
        return "250 2.0.0 OK queued"


def _peer(session: Session) -> tuple[str, int]:
    peer: Any = session.peer
    return (str(peer[0]), int(peer[1]))


def _over_tls(server: SMTP, session: Session) -> bool:
    transport = server.transport
    implicit = transport is not None and transport.get_extra_info("sslcontext") is not None
    return session.ssl is not None or implicit


def _login(session: Session) -> str | None:
    data: Any = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode()
    return None


async def _apply(rule: _Rule, server: SMTP) -> str:
    if rule.delay:
        await asyncio.sleep(rule.delay)
    if rule.reply is not None and not rule.reply.startswith("421"):
        return rule.reply
    # 421 (service closing) and drops end the connection; connection_lost() then cancels this
    # handler, so nothing more is written.
    if rule.reply is not None:
        await server.push(rule.reply)
    assert server.transport is not None
    server.transport.close()
    await asyncio.sleep(3600)
    raise AssertionError("unreachable: the closed connection cancels the handler")


class _ThreadedController(Controller):
    """aiosmtpd's Controller on an OS-assigned free port (port=0, then read the real one)."""

    def _trigger_server(self) -> None:
        server: Any = self.server
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpSink:
    """An SMTP server on 127.0.0.1 with a free port; scriptable per recipient address.

    `tls_context` (a server context) offers STARTTLS and then requires it; `credentials`
    (login -> password) makes AUTH required (over TLS when a context is given);
    `idle_timeout` closes connections that stay silent that long (as real servers do);
    `size_limit` is the SIZE it advertises (aiosmtpd's default; None: no SIZE at all);
    `pipelining` and `eight_bit` whether it offers PIPELINING and 8BITMIME.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        credentials: Mapping[str, str] | None = None,
        idle_timeout: float = 300.0,
        smtputf8: bool = True,
        size_limit: int | None = 33_554_432,
        pipelining: bool = True,
        eight_bit: bool = True,
    ) -> None:
        self.port = 0
        self.pipelining = pipelining
        self.eight_bit = eight_bit
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self._dropped: list[str] = []
        self._peers: set[tuple[str, int]] = set()
        self._rules: dict[str, list[_Rule]] = {}
        self._credentials = dict(credentials or {})
        self._kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "timeout": idle_timeout}
        self._kwargs["data_size_limit"] = size_limit
        if tls_context is not None:
            self._kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            self._kwargs["authenticator"] = self._authenticate
            # aiosmtpd warns when AUTH is required without TLS, so only require it with TLS.
            self._kwargs["auth_required"] = tls_context is not None
            self._kwargs["auth_require_tls"] = tls_context is not None
        self._controller: _ThreadedController | None = None
        self._server: asyncio.AbstractServer | None = None
        self._protocols: list[SMTP] = []

    # -- scripting ---------------------------------------------------------------------------

    def refuse(
        self,
        address: str,
        code: int,
        *,
        at: Stage = "RCPT",
        times: int | None = None,
        reply: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer `code` (e.g. 451, 550, 421) for `address` at MAIL, RCPT or DATA.

        `times` limits how often (then the address is accepted); `reply` overrides the text
        (it must start with the code); 421 also closes the connection, as real servers do.
        `address` may be `EVERYONE` (any address without a rule of its own); at MAIL it is
        the envelope sender.
        """
        text = reply or DEFAULT_REPLIES.get(code, f"{code} {code // 100}.0.0 Refused by sink")
        self._add(address, _Rule(at, text, times, delay))

    def drop(self, address: str, *, times: int | None = 1) -> None:
        """Close the connection mid-DATA for `address` (after the content, before the reply)."""
        self._add(address, _Rule("DATA", None, times, 0.0))

    def stall(self, address: str, seconds: float, *, times: int | None = 1) -> None:
        """Wait `seconds` before answering DATA for `address` (to test client timeouts);
        `EVERYONE` stalls every address."""
        self._add(address, _Rule("DATA", "250 2.0.0 OK late", times, seconds))

    def _add(self, address: str, rule: _Rule) -> None:
        with self._lock:
            self._rules.setdefault(address.lower(), []).append(rule)

    def _take_rule(self, address: str, stage: Stage) -> _Rule | None:
        with self._lock:
            rules = self._rules.get(address.lower(), [])
            if not any(rule.stage == stage for rule in rules):
                rules = self._rules.get(EVERYONE, [])
            for rule in rules:
                if rule.stage == stage:
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times <= 0:
                            rules.remove(rule)
                    return rule
        return None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            expected = self._credentials.get(data.login.decode())
            if expected is not None and expected == data.password.decode():
                return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    # -- what was received -------------------------------------------------------------------

    @property
    def messages(self) -> list[Received]:
        """Accepted messages, in the order their DATA completed."""
        with self._lock:
            return list(self._messages)

    def recipients(self) -> list[str]:
        """Every accepted recipient, one entry per accepted message and recipient."""
        return [rcpt for message in self.messages for rcpt in message.rcpt_tos]

    def dropped(self) -> list[str]:
        """Recipients whose DATA ended with a dropped connection."""
        with self._lock:
            return list(self._dropped)

    def sessions(self) -> int:
        """How many connections carried at least one transaction (MAIL FROM)."""
        with self._lock:
            return len(self._peers)

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Serve from a thread of its own (for sync tests)."""
        controller = _ThreadedController(
            _Handler(self),
            hostname=self.host,
            port=0,
            ready_timeout=10.0,
            server_hostname="sink.test",
            **self._kwargs,
        )
        controller.start()
        self._controller = controller
        self.port = controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SmtpSink:
        """Serve from the running event loop (for async code)."""
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        def factory() -> SMTP:
            protocol = SMTP(handler, loop=loop, hostname="sink.test", **self._kwargs)
            self._protocols.append(protocol)
            return protocol

        self._server = await loop.create_server(factory, host=self.host, port=0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)
        self._server = None
