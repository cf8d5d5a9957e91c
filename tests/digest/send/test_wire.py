"""The SMTP client (digest/send/wire.py) against aiosmtpd on loopback, a real Postfix, and
a scripted server (tests/helpers/raw_smtp.py) for what a well-behaved server never does:
garbage, silence, replies split byte by byte, 354 after a refused RCPT, a stray reply."""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiosmtpd.smtp import SMTP, Session
from aiosmtpd.smtp import Envelope as SmtpdEnvelope

from digest.config import SmtpSettings
from digest.send.outcome import Envelope, Outcome
from digest.send.smtp import SmtpSender
from digest.send.wire import (
    SessionOptions,
    SmtpAuthError,
    SmtpConnection,
    SmtpDisconnected,
    SmtpError,
    SmtpReplyError,
    SmtpTimeout,
    Transaction,
)
from tests.helpers.postfix import Postfix
from tests.helpers.raw_smtp import CLOSE, SILENT, RawSmtp, Script
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.tls import certificate

SENDER = "bounces@news.example.org"
READER = "reader@example.com"
# A message as its author wrote it, and its SMTP form: every line that starts with a dot
# doubled (the server takes one off again), CRLF throughout.
ORIGINAL = (
    b"Subject: dots\r\nTo: reader@example.com\r\n\r\n.first\r\nmiddle\r\n..two\r\n.\r\nend\r\n"
)
STUFFED = (
    b"Subject: dots\r\nTo: reader@example.com\r\n\r\n..first\r\nmiddle\r\n...two\r\n..\r\nend\r\n"
)
# Any line ends, dots not doubled, no final line end (the slow path makes it SMTP-ready).
LOOSE = b"Subject: loose\nTo: reader@example.com\n\n.lead\rbare cr\r\nmixed\n..two\n."
LOOSE_AS_RECEIVED = (
    b"Subject: loose\r\nTo: reader@example.com\r\n\r\n.lead\r\nbare cr\r\nmixed\r\n..two\r\n.\r\n"
)
T = TypeVar("T")


def _run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, then collect what it left: futures with unretrieved exceptions log from
    their __del__, and when that happens inside pytest's own ast.parse (formatting a failure)
    Python 3.11 raises SystemError and pytest stops with INTERNALERROR."""
    try:
        return asyncio.run(main)
    finally:
        gc.collect()


def _options(port: int, **overrides: Any) -> SessionOptions:
    values: dict[str, Any] = {"timeout": 5.0, "local_hostname": "client.test"}
    values.update(overrides)
    return SessionOptions(host="127.0.0.1", port=port, **values)


async def _open(port: int, **overrides: Any) -> SmtpConnection:
    connection = SmtpConnection(_options(port, **overrides))
    await connection.open()
    return connection


def _mail(recipient: str = READER, data: bytes = STUFFED, **fields: Any) -> Transaction:
    return Transaction(SENDER, recipient, data, ready=fields.pop("ready", True), **fields)


# -- delivery -----------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_transaction_delivers_the_exact_bytes(pipelining: bool) -> None:
    with SmtpSink(pipelining=pipelining) as sink:

        async def go() -> list[int]:
            connection = await _open(sink.port)
            assert connection.supports("PIPELINING") is pipelining
            codes = [(await connection.send(_mail("a@example.com"))).code]
            codes.append((await connection.send(_mail("b@example.com", LOOSE, ready=False))).code)
            unended = STUFFED.removesuffix(b"\r\n")  # ready, without a last line end
            codes.append((await connection.send(_mail("c@example.com", unended))).code)
            await connection.quit()
            return codes

        assert _run(go()) == [250, 250, 250]
        assert [m.data for m in sink.messages] == [ORIGINAL, LOOSE_AS_RECEIVED, ORIGINAL]
        assert sink.messages[0].rcpt_tos == ("a@example.com",)
        assert {m.mail_from for m in sink.messages} == {SENDER}
        assert sink.sessions() == 1


def test_ready_data_is_written_as_it_is_and_loose_data_is_made_ready() -> None:
    async def go() -> RawSmtp:
        async with RawSmtp() as server:
            connection = await _open(server.port)
            await connection.send(_mail(data=STUFFED))
            await connection.send(_mail(data=LOOSE, ready=False))
            await connection.quit()
            return server

    server = _run(go())
    stuffed_loose = LOOSE_AS_RECEIVED.replace(b"\n.", b"\n..")
    assert server.messages == [STUFFED, stuffed_loose]
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA", "QUIT"]


def test_smtputf8_addresses_are_written_in_utf8() -> None:
    sender, reader = "نشرة@news.example.org", "قارئ@example.com"
    with SmtpSink(smtputf8=True) as sink:

        async def go() -> int:
            connection = await _open(sink.port)
            assert connection.supports("SMTPUTF8")
            transaction = Transaction(sender, reader, STUFFED, ("SMTPUTF8",), True, True)
            reply = await connection.send(transaction)
            await connection.quit()
            return reply.code

        assert _run(go()) == 250
        assert [(m.mail_from, m.rcpt_tos) for m in sink.messages] == [(sender, (reader,))]


# -- refusals -----------------------------------------------------------------------------

REFUSALS = {
    "MAIL": ("blocked@news.example.org", READER, 550),
    "RCPT": (SENDER, "gone@example.com", 550),
    "DATA": (SENDER, "spam@example.com", 554),  # the content's final reply
}


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
def test_a_refusal_names_its_stage_and_reset_keeps_the_connection(
    stage: str, pipelining: bool
) -> None:
    sender, recipient, code = REFUSALS[stage]
    with SmtpSink(pipelining=pipelining) as sink:
        sink.refuse(sender if stage == "MAIL" else recipient, code, at=stage)  # type: ignore[arg-type]

        async def go() -> SmtpReplyError:
            connection = await _open(sink.port)
            with pytest.raises(SmtpReplyError) as refused:
                await connection.send(Transaction(sender, recipient, STUFFED, ready=True))
            assert connection.is_connected
            await connection.reset()
            assert (await connection.send(_mail("after@example.com"))).code == 250
            await connection.quit()
            return refused.value

        error = _run(go())
        assert (error.stage, error.code) == (stage, code)
        assert sink.recipients() == ["after@example.com"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_data_command_is_stage_data(pipelining: bool) -> None:
    extensions = ("PIPELINING",) if pipelining else ()
    script = Script(extensions, answers={"DATA": ["554 5.7.1 not from you"]})

    async def go() -> tuple[SmtpReplyError, RawSmtp]:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpReplyError) as refused:
                await connection.send(_mail())
            await connection.reset()
            await connection.send(_mail("after@example.com"))
            await connection.quit()
            return refused.value, server

    error, server = _run(go())
    assert (error.stage, error.code, error.message) == ("DATA", 554, "5.7.1 not from you")
    assert server.messages == [STUFFED]  # only the message after RSET
    assert server.verbs()[4] == "RSET"


@pytest.mark.parametrize("refused", ["MAIL", "RCPT"])
def test_354_after_a_refusal_in_a_pipelined_batch_sends_an_empty_message(refused: str) -> None:
    # RFC 2920 §3.1: the server may accept DATA although it refused RCPT; the client must then
    # end the (empty) message at once, not send the content to nobody.
    answers = {refused: ["550 5.1.1 no such user"], ".": ["554 5.5.1 no valid recipients"]}

    async def go() -> tuple[SmtpReplyError, RawSmtp]:
        async with RawSmtp(Script(answers=answers)) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpReplyError) as error:
                await connection.send(_mail())
            await connection.reset()
            assert (await connection.send(_mail())).code == 250
            await connection.quit()
            return error.value, server

    error, server = _run(go())
    assert (error.stage, error.code) == (refused, 550)
    assert server.messages == [b"", STUFFED]
    assert server.verbs() == [
        "EHLO",
        "MAIL",
        "RCPT",
        "DATA",
        "RSET",
        "MAIL",
        "RCPT",
        "DATA",
        "QUIT",
    ]


@pytest.mark.parametrize("pipelining", [True, False])
def test_421_at_rcpt_is_a_reply_at_rcpt_and_the_connection_is_gone(pipelining: bool) -> None:
    with SmtpSink(pipelining=pipelining) as sink:
        sink.refuse("busy@example.com", 421)

        async def go() -> SmtpReplyError:
            connection = await _open(sink.port)
            with pytest.raises(SmtpReplyError) as refused:
                await connection.send(_mail("busy@example.com"))
            await asyncio.sleep(0)  # the close the client started itself completes
            assert not connection.is_connected
            with pytest.raises(SmtpDisconnected):
                await connection.send(_mail())
            return refused.value

        error = _run(go())
        assert (error.stage, error.code) == ("RCPT", 421)
        assert sink.messages == []


def test_is_connected_is_false_as_soon_as_the_client_closes() -> None:
    script = Script((), answers={"RCPT": ["421 4.7.0 closing, try later"]})  # and stays open

    async def go() -> list[bool]:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpReplyError):
                await connection.send(_mail())
            after_421 = connection.is_connected
            other = await _open(server.port)
            await other.quit()
            return [after_421, other.is_connected]

    assert _run(go()) == [False, False]


# -- lost connections and silence ----------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_connection_dropped_mid_data_is_disconnected_at_data(pipelining: bool) -> None:
    with SmtpSink(pipelining=pipelining) as sink:
        sink.drop(READER)

        async def go() -> SmtpDisconnected:
            connection = await _open(sink.port)
            with pytest.raises(SmtpDisconnected) as lost:
                await connection.send(_mail())
            assert not connection.is_connected
            return lost.value

        assert _run(go()).stage == "DATA"
        assert sink.dropped() == [READER] and sink.messages == []


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("cut", ["MAIL", "RCPT", "DATA", "."])
def test_a_connection_lost_before_a_reply_names_that_reply(pipelining: bool, cut: str) -> None:
    script = Script(("PIPELINING",) if pipelining else (), answers={cut: [CLOSE]})
    expected = "DATA" if cut == "." else cut

    async def go() -> SmtpDisconnected:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpDisconnected) as lost:
                await connection.send(_mail())
            assert not connection.is_connected
            return lost.value

    assert _run(go()).stage == expected


@pytest.mark.parametrize("silent", ["<greeting>", "EHLO", "MAIL", "RCPT", "DATA", "."])
def test_a_server_that_never_answers_times_out_and_is_closed(silent: str) -> None:
    stage = {"<greeting>": "connect", "EHLO": "connect", ".": "DATA"}.get(silent, silent)

    async def go() -> tuple[SmtpTimeout, SmtpConnection]:
        async with RawSmtp(Script(answers={silent: [SILENT]})) as server:
            connection = SmtpConnection(_options(server.port, timeout=0.3))
            with pytest.raises(SmtpTimeout) as late:
                await connection.open()
                await connection.send(_mail())
            return late.value, connection

    error, connection = _run(go())
    assert isinstance(error, TimeoutError)
    assert not connection.is_connected
    if silent != "EHLO":  # see test_errors_while_greeting_are_stage_connect
        assert error.stage == stage


def test_errors_while_greeting_are_stage_connect() -> None:
    async def go() -> list[str]:
        stages = []
        for answer in (SILENT, CLOSE):
            async with RawSmtp(Script(answers={"EHLO": [answer]})) as server:
                with pytest.raises(SmtpError) as error:
                    await _open(server.port, timeout=0.3)
                stages.append(error.value.stage)
        return stages

    assert _run(go()) == ["connect", "connect"]


# -- what servers say ---------------------------------------------------------------------


def test_a_554_greeting_is_refused_at_connect() -> None:
    script = Script(answers={"<greeting>": ["554 5.3.2 no service for you"]})

    async def go() -> tuple[SmtpReplyError, SmtpConnection]:
        async with RawSmtp(script) as server:
            connection = SmtpConnection(_options(server.port))
            with pytest.raises(SmtpReplyError) as refused:
                await connection.open()
            return refused.value, connection

    error, connection = _run(go())
    assert (error.stage, error.code) == ("connect", 554)
    assert not connection.is_connected


def test_ehlo_refused_falls_back_to_helo_without_extensions() -> None:
    script = Script(answers={"EHLO": ["502 5.5.1 what is EHLO"]})

    async def go() -> tuple[SmtpConnection, RawSmtp]:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            await connection.send(_mail())
            await connection.quit()
            return connection, server

    connection, server = _run(go())
    assert connection.extensions == {}
    assert server.lines[:2] == [b"EHLO client.test\r\n", b"HELO client.test\r\n"]
    assert server.messages == [STUFFED]


def test_replies_split_byte_by_byte_and_multiline_are_read_whole() -> None:
    script = Script(
        ("PIPELINING", "SIZE 1000", "AUTH PLAIN LOGIN"),
        answers={".": ["250-2.0.0 queued\r\n250-as 42\r\n250 thanks"]},
        trickle=True,
    )

    async def go() -> tuple[SmtpConnection, int, str]:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            reply = await connection.send(_mail())
            await connection.quit()
            return connection, reply.code, reply.message

    connection, code, message = _run(go())
    assert connection.extensions == {"PIPELINING": "", "SIZE": "1000", "AUTH": "PLAIN LOGIN"}
    assert (code, message) == (250, "2.0.0 queued\nas 42\nthanks")


@pytest.mark.parametrize("at", ["MAIL", "."])
def test_a_garbage_reply_is_an_error_and_closes(at: str) -> None:
    # One command at a time: pipelined, the replies after the garbage may come in the same
    # read and are taken as answers (test_nothing_after_garbage_is_taken_as_an_answer).
    script = Script((), answers={at: ["hello there, friend"]})

    async def go() -> tuple[SmtpError, SmtpConnection]:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpError) as garbage:
                await connection.send(_mail())
            return garbage.value, connection

    error, connection = _run(go())
    assert not isinstance(error, SmtpReplyError)
    assert "not a reply" in str(error) and error.stage == ("DATA" if at == "." else "MAIL")
    assert not connection.is_connected


def test_nothing_after_garbage_is_taken_as_an_answer() -> None:
    script = Script(answers={".": ["hello there, friend\r\n250 2.0.0 queued"]})

    async def go() -> None:
        async with RawSmtp(script) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpError):
                await connection.send(_mail())

    _run(go())


# -- addresses ----------------------------------------------------------------------------

BAD_ADDRESSES = ["a\r\nRSET@example.com", "a\n@example.com", "a\r@example.com", "<a@example.com"]
BAD_ADDRESSES += ["a@example.com>", "a\x00@example.com", "قارئ@example.com"]  # no utf8=True


@pytest.mark.parametrize("bad", BAD_ADDRESSES)
def test_an_address_that_cannot_go_into_a_command_writes_nothing(bad: str) -> None:
    async def go() -> RawSmtp:
        async with RawSmtp() as server:
            connection = await _open(server.port)
            with pytest.raises(ValueError):
                await connection.send(Transaction(SENDER, bad, STUFFED, ready=True))
            with pytest.raises(ValueError):
                await connection.send(Transaction(bad, READER, STUFFED, ready=True))
            assert connection.is_connected
            await connection.send(_mail())  # the connection is as it was
            await connection.quit()
            return server

    server = _run(go())
    assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
    assert server.messages == [STUFFED]


# -- TLS and login --------------------------------------------------------------------------


class _LoginOnlySink(SmtpSink):
    """aiosmtpd offering AUTH LOGIN only (it offers PLAIN first otherwise)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._kwargs["auth_exclude_mechanism"] = ["PLAIN"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_login(tmp_path: Path, mechanism: str) -> None:
    server_tls, client_tls = certificate(tmp_path)
    kind = SmtpSink if mechanism == "PLAIN" else _LoginOnlySink
    with kind(tls_context=server_tls, credentials={"digest": "s3cret"}) as sink:
        login = _options(sink.port, starttls=True, tls_context=client_tls, username="digest")

        async def go() -> tuple[str, SmtpAuthError]:
            connection = SmtpConnection(replace(login, password="s3cret"))
            await connection.open()
            offered = connection.extensions.get("AUTH", "")
            await connection.send(_mail())
            await connection.quit()
            wrong = SmtpConnection(replace(login, password="guess"))
            with pytest.raises(SmtpAuthError) as refused:
                await wrong.open()
            return offered, refused.value

        offered, error = _run(go())
        assert set(offered.split()) == ({"LOGIN", "PLAIN"} if mechanism == "PLAIN" else {"LOGIN"})
        assert (error.code, error.stage) == (535, "connect")
        assert [(m.login, m.tls) for m in sink.messages] == [("digest", True)]


def test_starttls_asked_but_not_offered_is_an_error() -> None:
    with SmtpSink() as sink:

        async def go() -> tuple[SmtpError, SmtpConnection]:
            connection = SmtpConnection(_options(sink.port, starttls=True))
            with pytest.raises(SmtpError) as refused:
                await connection.open()
            return refused.value, connection

        error, connection = _run(go())
        assert not isinstance(error, SmtpReplyError)
        assert "STARTTLS" in str(error) and error.stage == "connect"
        assert not connection.is_connected


class _Keep:
    """An aiosmtpd handler that keeps each message's content."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: SmtpdEnvelope) -> str:
        self.messages.append(bytes(envelope.original_content or b""))
        transport = server.transport
        assert transport is not None
        self.tls.append(transport.get_extra_info("sslcontext") is not None)
        return "250 2.0.0 OK"


def test_implicit_tls(tmp_path: Path) -> None:
    server_tls, client_tls = certificate(tmp_path)

    async def go() -> _Keep:
        keep = _Keep()
        protocols: list[SMTP] = []

        def factory() -> SMTP:
            protocols.append(SMTP(keep, hostname="tls.test"))
            return protocols[-1]

        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", 0, ssl=server_tls
        )
        port = server.sockets[0].getsockname()[1]
        try:
            connection = await _open(port, tls=True, tls_context=client_tls)
            await connection.send(_mail())
            await connection.quit()
            untrusted = SmtpConnection(_options(port, tls=True))  # the system's CAs
            with pytest.raises(ssl.SSLCertVerificationError):
                await untrusted.open()
        finally:
            server.close()
            for protocol in protocols:
                if protocol.transport is not None:
                    protocol.transport.close()
            await server.wait_closed()
        return keep

    keep = _run(go())
    assert (keep.messages, keep.tls) == ([ORIGINAL], [True])


def test_replies_injected_before_tls_are_not_taken_after_it(tmp_path: Path) -> None:
    server_tls, client_tls = certificate(tmp_path)
    injected = "220 2.0.0 go ahead\r\n250-evil.test\r\n250 INJECTED"
    script = Script(("STARTTLS", "PIPELINING"), answers={"STARTTLS": [injected]}, tls=server_tls)

    async def go() -> dict[str, str] | None:
        async with RawSmtp(script) as server:
            connection = SmtpConnection(
                _options(server.port, starttls=True, tls_context=client_tls, timeout=1.0)
            )
            try:
                await connection.open()
            except SmtpError:
                return None  # refusing the session is right too
            connection.close()
            return connection.extensions

    extensions = _run(go())
    assert extensions is None or "INJECTED" not in extensions


# -- cancellation -----------------------------------------------------------------------------


def test_a_cancelled_send_does_not_leave_a_transaction_open() -> None:
    gate = asyncio.Event()

    async def go() -> tuple[BaseException | None, bool]:
        async with RawSmtp(Script(gates={"DATA": gate})) as server:
            connection = await _open(server.port, timeout=1.0)
            first = asyncio.create_task(connection.send(_mail("first@example.com")))
            await _until(lambda: len(server.lines) == 4)  # EHLO MAIL RCPT DATA
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            gate.set()
            try:
                await connection.send(_mail("second@example.com"))
            except SmtpError as error:
                return error, STUFFED in server.messages
            return None, STUFFED in server.messages

    error, delivered = _run(go())
    # Right: refuse at once (not connected), or deliver the second message properly.
    assert isinstance(error, SmtpDisconnected) or (error is None and delivered)


async def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10.0  # a bound, not a timing
    while not check():
        assert time.monotonic() < deadline, "waited 10 s"
        await asyncio.sleep(0.01)


def test_a_lost_pipelined_batch_logs_no_unretrieved_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        async with RawSmtp(Script(answers={"MAIL": [CLOSE]})) as server:
            connection = await _open(server.port)
            with pytest.raises(SmtpDisconnected):
                await connection.send(_mail())
        gc.collect()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        _run(go())
        gc.collect()
    assert "never retrieved" not in caplog.text


# -- a real Postfix -------------------------------------------------------------------------


def test_fifty_pipelined_transactions_on_one_connection_to_postfix() -> None:
    recipients = [f"reader{i}@example.org" for i in range(50)]
    with SmtpSink() as sink, Postfix({"example.org": sink.port}) as relay:

        async def go() -> list[int]:
            connection = await _open(relay.port, timeout=30.0)
            assert connection.supports("PIPELINING")
            codes = [(await connection.send(_mail(r))).code for r in recipients]
            await connection.quit()
            return codes

        assert _run(go()) == [250] * 50
        deadline = time.monotonic() + 60.0  # Postfix relays them to the sink in its own time
        while len(sink.messages) < 50 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(sink.recipients()) == sorted(recipients)
        assert all(m.data.endswith(ORIGINAL.split(b"\r\n\r\n", 1)[1]) for m in sink.messages)


def test_a_stray_reply_never_makes_an_unsent_message_count_as_sent() -> None:
    script = Script(answers={".": ["250 2.0.0 queued\r\n250 2.0.0 stray"]})

    async def go() -> tuple[list[Outcome], list[bytes]]:
        async with RawSmtp(script) as server:
            settings = SmtpSettings(host="127.0.0.1", port=server.port, connections=1)
            async with SmtpSender(settings, local_hostname="client.test") as sender:
                outcomes = [
                    await sender.send(Envelope(SENDER, f"{name}@example.com", ORIGINAL))
                    for name in ("first", "second")
                ]
            return outcomes, server.messages

    (first, second), messages = _run(go())
    assert first.status == "sent" and len(messages) >= 1
    assert second.status != "sent" or len(messages) == 2
