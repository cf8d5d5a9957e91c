"""SMTP delivery through a pool of reused connections (digest/send/wire.py), paced and
throttle-aware."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from digest.config import SmtpSettings
from digest.errors import ConfigError, DigestError, InvalidInput
from digest.send.addresses import smtp_address
from digest.send.outcome import Envelope, Outcome, SenderLifecycle, Stage
from digest.send.wire import (
    SessionOptions,
    SmtpAuthError,
    SmtpConnection,
    SmtpDisconnected,
    SmtpError,
    SmtpReplyError,
    Transaction,
)

log = logging.getLogger(__name__)


class SmtpUnavailable(DigestError):
    """The SMTP server cannot be reached or refuses us; nothing was sent."""


class Pacer:
    """Spaces message starts for the whole pool; slows down when the server says so.

    A token bucket one token deep: at `rate` messages per second each start is 1/rate after
    the previous one (0 = no limit). A throttling reply halves the rate (once per episode)
    and pauses every start for `pause` seconds, doubling the pause while throttling goes on
    (up to `max_pause`); after `recovery` calm seconds the rate doubles back towards `base`.
    `clock` and `sleep` keep its time (tests replace them).
    """

    def __init__(
        self,
        rate: float,
        *,
        pause: float = 5.0,
        max_pause: float = 300.0,
        recovery: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base = rate
        self.rate = rate
        self.throttles = 0
        self._first_pause = pause
        self._pause = pause
        self._max_pause = max_pause
        self._recovery = recovery
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._paused_until = 0.0
        self._last_throttle = float("-inf")

    async def wait(self) -> None:
        """Return when the next message may start."""
        now = self._clock()
        if self.rate < self.base and now - self._last_throttle >= self._recovery:
            self.rate = min(self.base, self.rate * 2)
            self._last_throttle = now  # the next doubling waits another calm period
        start = max(now, self._next, self._paused_until)
        if self.rate > 0:
            self._next = start + 1.0 / self.rate
        if start > now:
            await self._sleep(start - now)

    def throttled(self) -> None:
        """The server asked us to slow down."""
        now = self._clock()
        self.throttles += 1
        if now < self._paused_until:
            return  # the same episode: several connections heard it at once
        recent = now - self._last_throttle < self._recovery
        self._pause = min(self._max_pause, self._pause * 2) if recent else self._first_pause
        self._paused_until = now + self._pause
        self._last_throttle = now
        if self.rate > 0:
            self.rate = max(self.rate / 2, min(self.base, 0.1))
        log.warning(
            "SMTP server asks to slow down: pausing %.1fs, rate now %s",
            self._pause,
            f"{self.rate:g}/s" if self.rate else "unlimited",
        )


@dataclass(eq=False)
class _Slot:
    """One pooled connection; `client` is replaced when the connection is lost."""

    client: SmtpConnection


class SmtpSender(SenderLifecycle):
    """Sends over `settings.connections` reused SMTP connections, at most `settings.rate`/s.

    `open()` connects eagerly and raises SmtpUnavailable (naming host:port) when no
    connection can be made. `send()` may be awaited from many tasks at once: each takes an
    idle connection, runs MAIL/RCPT/DATA (digest/send/wire.py) and puts it back. A refused
    message gets RSET so the connection stays usable; a lost connection is replaced on next
    use, and the message that was in DATA when it dropped comes back `temporary`: it is never
    re-sent here, since the server may have accepted it (the outbox decides). `tls_context`
    overrides the default certificate checks (a private CA); `pacer` paces message starts
    (default: at `rate`). `eight_bit` says whether every open connection offers 8BITMIME.
    """

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        if settings.tls and settings.starttls:
            raise ConfigError(
                "smtp.tls and smtp.starttls are exclusive: tls=true for implicit TLS "
                "(port 465), starttls=true to upgrade a plain connection (port 587 or 25)"
            )
        self.settings = settings
        self.address = f"{settings.host}:{settings.port}"
        self.pacer = pacer or Pacer(settings.rate)
        self.connections_opened = 0
        self.eight_bit = False
        self._session = SessionOptions(
            host=settings.host,
            port=settings.port,
            timeout=settings.timeout,
            tls=settings.tls,
            starttls=settings.starttls,
            username=settings.username,
            password=settings.password,
            local_hostname=local_hostname or _local_hostname(),
            tls_context=tls_context,
        )
        self._slots: list[_Slot] = []
        self._idle: asyncio.Queue[_Slot] | None = None

    @property
    def rate(self) -> float:
        """Current messages-per-second limit (0 = none); lower than configured while throttled."""
        return self.pacer.rate

    async def _connect(self) -> SmtpConnection:
        client = SmtpConnection(self._session)
        await client.open()  # greets too: MAIL FROM needs this connection's extensions
        self.connections_opened += 1
        return client

    async def open(self) -> None:
        if self._idle is not None:
            return
        results = await asyncio.gather(
            *(self._connect() for _ in range(self.settings.connections)), return_exceptions=True
        )
        clients = [result for result in results if isinstance(result, SmtpConnection)]
        errors = [result for result in results if isinstance(result, BaseException)]
        for error in errors:
            if not isinstance(error, Exception):  # cancelled while connecting
                for client in clients:
                    client.close()
                raise error
        if not clients:
            raise SmtpUnavailable(self._why(errors[0]))
        if errors:
            log.warning(
                "only %d of %d SMTP connections to %s opened (%s); sending with %d",
                len(clients),
                self.settings.connections,
                self.address,
                self._why(errors[0]),
                len(clients),
            )
        self._slots = [_Slot(client) for client in clients]
        self.eight_bit = all(client.supports("8BITMIME") for client in clients)
        self._idle = asyncio.Queue()
        for slot in self._slots:
            self._idle.put_nowait(slot)

    def _why(self, error: BaseException) -> str:
        where = f"SMTP server {self.address}"
        if isinstance(error, SmtpAuthError):
            return (
                f"{where} refused the login of {self.settings.username!r} ({error.code} "
                f"{error.message}): check smtp.username and DIGEST_SMTP__PASSWORD"
            )
        if isinstance(error, TimeoutError):
            return f"{where} did not answer within {self.settings.timeout:g}s"
        if isinstance(error, SmtpReplyError):
            return f"{where} refused the connection: {error.code} {error.message}"
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            return f"TLS with {where} failed ({error}): check smtp.tls / smtp.starttls"
        if isinstance(error, SmtpDisconnected):
            return f"{where} closed the connection while greeting ({error}): check smtp.tls"
        if isinstance(error, OSError):
            return f"cannot connect to {where} ({error}): is it running? check smtp.host/port"
        if isinstance(error, SmtpError):
            return f"{where}: {error} (check smtp.starttls, smtp.tls, smtp.username)"
        return f"cannot connect to {where}: {error!r}"

    async def close(self) -> None:
        """Wait for messages in flight, then QUIT every connection."""
        idle, self._idle = self._idle, None
        if idle is None:
            return
        slots = [await idle.get() for _ in self._slots]
        await asyncio.gather(*(self._quit(slot.client) for slot in slots))
        self._slots = []

    async def _quit(self, client: SmtpConnection) -> None:
        with contextlib.suppress(SmtpError, OSError):
            await client.quit()

    async def send(self, envelope: Envelope) -> Outcome:
        """Deliver one message; every failure is an Outcome, never an exception."""
        idle = self._idle
        if idle is None:
            raise RuntimeError("SmtpSender.send() before open(): use `async with sender:`")
        slot = await idle.get()
        in_transaction = False
        try:
            await self.pacer.wait()
            in_transaction = True
            outcome = await self._deliver(slot, envelope)
        except BaseException:
            if in_transaction:  # cancelled mid-transaction: the connection state is unknown
                slot.client.close()
            raise
        finally:
            idle.put_nowait(slot)
        if outcome.throttled:
            self.pacer.throttled()
        return outcome

    async def _deliver(self, slot: _Slot, envelope: Envelope) -> Outcome:
        for attempt in (1, 2):
            fresh = not slot.client.is_connected
            if fresh:
                slot.client.close()
                try:
                    slot.client = await self._connect()
                except Exception as error:
                    return Outcome("temporary", None, self._why(error), "connect")
            client = slot.client
            try:
                transaction = _on_the_wire(client, envelope)
            except InvalidInput as error:  # made here, before MAIL: nobody's reply, no blame
                return Outcome("permanent", None, f"not sent: {error}")
            if envelope.eight_bit and not client.supports("8BITMIME"):
                return Outcome(
                    "temporary", None, f"{self.address} no longer offers 8BITMIME", "MAIL"
                )
            try:
                reply = await client.send(transaction)
            except SmtpReplyError as error:
                if error.code < 400:  # a success where a refusal was due: out of step
                    client.close()
                    why = f"unexpected reply at {_stage(error)}: {error}"
                    return Outcome("temporary", None, why, _stage(error))
                if client.is_connected:  # a 421 has closed it already
                    await self._reset(client)
                return Outcome.from_reply(error.code, error.message, _stage(error))
            except SmtpError as error:  # lost, or no answer in time: the connection is closed
                client.close()
                stage = _stage(error)
                if stage == "MAIL" and not fresh and attempt == 1:
                    # A pooled connection the server had closed (idle timeout): MAIL never got
                    # an answer, so nothing can have been accepted; one retry is safe.
                    log.info("SMTP connection to %s was closed; reconnecting", self.address)
                    continue
                lost = "no answer" if isinstance(error, TimeoutError) else "connection lost"
                return Outcome("temporary", None, f"{lost} at {stage}: {error}", stage)
            except OSError as error:
                client.close()
                return Outcome("temporary", None, f"SMTP error: {error}", "MAIL")
            except ValueError as error:  # an address that cannot go into a command
                return Outcome("permanent", None, f"unusable address: {error}", "MAIL")
            return Outcome.from_reply(reply.code, reply.message, "DATA")
        raise AssertionError("unreachable")

    async def _reset(self, client: SmtpConnection) -> None:
        try:
            await client.reset()
        except (SmtpError, OSError):
            client.close()


def _stage(error: SmtpError) -> Stage:
    stage = error.stage
    return stage if stage in ("MAIL", "RCPT", "DATA") else "MAIL"  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """The name we give in EHLO: this machine's fully qualified name (looked up once)."""
    return socket.getfqdn()


def _on_the_wire(client: SmtpConnection, envelope: Envelope) -> Transaction:
    """The transaction as this connection can take it: addresses with their domains in
    punycode; MAIL options SIZE when offered, BODY=8BITMIME for an 8bit message, SMTPUTF8
    when an address needs it. Raises InvalidInput (NeedsSmtpUtf8) when the server cannot
    take an address."""
    utf8 = client.supports("SMTPUTF8")
    sender = smtp_address(envelope.sender, utf8)
    recipient = smtp_address(envelope.recipient, utf8)
    options = [f"SIZE={len(envelope.data)}"] if client.supports("SIZE") else []
    if envelope.eight_bit:
        options.append("BODY=8BITMIME")
    wide = not (sender.isascii() and recipient.isascii())
    if wide:
        options.append("SMTPUTF8")
    if envelope.wire is None:
        return Transaction(sender, recipient, envelope.data, tuple(options), False, wide)
    return Transaction(sender, recipient, envelope.wire, tuple(options), True, wide)
