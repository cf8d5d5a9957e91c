"""The SMTP pool (digest/send/smtp.py) against a real local SMTP server, paced by the Pacer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from digest.config import SmtpSettings
from digest.errors import ConfigError
from digest.send.outcome import Envelope, Outcome
from digest.send.smtp import Pacer, SmtpSender, SmtpUnavailable
from tests.helpers.smtp_sink import SmtpSink
from tests.helpers.tls import certificate

T = TypeVar("T")
RETURN_PATH = "bounces@news.example.org"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def _settings(sink: SmtpSink, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "connections": 3,
        "timeout": 5.0,
    }
    values.update(overrides)
    return SmtpSettings.model_validate(values)


def _sender(settings: SmtpSettings, pacer: Pacer | None = None) -> SmtpSender:
    return SmtpSender(settings, local_hostname="client.test", pacer=pacer)


class VirtualTime:
    """The Pacer's clock and sleep: sleeping moves the clock to the end of the sleep at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    def pacer(self, rate: float, **options: float) -> Pacer:
        return Pacer(rate, clock=self.clock, sleep=self.sleep, **options)


def _envelope(recipient: str, body: str = "hello") -> Envelope:
    data = f"Subject: test\r\nTo: {recipient}\r\n\r\n{body}\r\n.leading dot\r\n".encode()
    return Envelope(RETURN_PATH, recipient, data)


def _run(make: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await make()

    return asyncio.run(main())


async def _send_all(sender: SmtpSender, recipients: list[str]) -> dict[str, Outcome]:
    outcomes = await asyncio.gather(*(sender.send(_envelope(r)) for r in recipients))
    return dict(zip(recipients, outcomes, strict=True))


def test_pool_delivers_each_message_once_over_reused_connections(sink: SmtpSink) -> None:
    recipients = [f"reader{i}@example.com" for i in range(60)]

    async def go() -> tuple[dict[str, Outcome], int]:
        async with _sender(_settings(sink)) as sender:
            return await _send_all(sender, recipients), sender.connections_opened

    outcomes, opened = _run(go)
    assert {outcome.status for outcome in outcomes.values()} == {"sent"}
    assert {outcome.code for outcome in outcomes.values()} == {250}
    assert sorted(sink.recipients()) == sorted(recipients)  # each exactly once
    assert opened == 3
    assert sink.sessions() == 3 < len(recipients)
    assert all(m.mail_from == RETURN_PATH for m in sink.messages)
    assert sink.messages[0].data.endswith(b"\r\n.leading dot\r\n")  # dot-stuffing round trip


def test_refused_recipients_are_data_and_the_batch_goes_on(sink: SmtpSink) -> None:
    # 451 (greylisting) and 550 (no such user) in one batch: temporary vs permanent; the
    # rest is sent, over the same three connections (RSET kept them usable).
    sink.refuse("grey1@example.com", 451)
    sink.refuse("grey2@example.com", 451)
    sink.refuse("gone1@example.com", 550)
    sink.refuse("gone2@example.com", 550, at="DATA", reply="554 5.7.1 Message refused")
    good = [f"ok{i}@example.com" for i in range(20)]
    recipients = ["grey1@example.com", *good[:10], "gone1@example.com", "grey2@example.com"]
    recipients += [*good[10:], "gone2@example.com"]

    async def go() -> dict[str, Outcome]:
        async with _sender(_settings(sink)) as sender:
            return await _send_all(sender, recipients)

    outcomes = _run(go)
    grey, gone = outcomes["grey1@example.com"], outcomes["gone1@example.com"]
    assert (grey.status, grey.code, grey.stage) == ("temporary", 451, "RCPT")
    assert (gone.status, gone.code, gone.stage) == ("permanent", 550, "RCPT")
    assert gone.hard_bounce and not grey.hard_bounce
    refused_data = outcomes["gone2@example.com"]
    assert (refused_data.status, refused_data.code, refused_data.stage) == (
        "permanent",
        554,
        "DATA",
    )
    assert not refused_data.hard_bounce  # a policy refusal says nothing about the address
    assert all(outcomes[r].status == "sent" for r in good)
    assert sorted(sink.recipients()) == sorted(good)
    assert sink.sessions() == 3


def test_connection_dropped_mid_data_is_temporary_and_the_next_go_out(sink: SmtpSink) -> None:
    sink.drop("flaky@example.com")
    recipients = ["before@example.com", "flaky@example.com", "after1@example.com"]
    recipients.append("after2@example.com")

    async def go() -> tuple[list[Outcome], int]:
        async with _sender(_settings(sink, connections=1)) as sender:
            outcomes = [await sender.send(_envelope(r)) for r in recipients]
            return outcomes, sender.connections_opened

    outcomes, opened = _run(go)
    assert [o.status for o in outcomes] == ["sent", "temporary", "sent", "sent"]
    assert (outcomes[1].code, outcomes[1].stage) == (None, "DATA")
    assert sink.dropped() == ["flaky@example.com"]
    assert sink.recipients() == ["before@example.com", "after1@example.com", "after2@example.com"]
    assert opened == 2 == sink.sessions()  # one fresh connection after the drop, not per message


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    with SmtpSink(idle_timeout=0.3) as sink:

        async def go() -> list[Outcome]:
            async with _sender(_settings(sink, connections=1)) as sender:
                first = await sender.send(_envelope("a@example.com"))
                await asyncio.sleep(0.8)  # the server hangs up on the idle connection
                second = await sender.send(_envelope("b@example.com"))
                return [first, second]

        outcomes = _run(go)
        assert [o.status for o in outcomes] == ["sent", "sent"]
        assert sink.recipients() == ["a@example.com", "b@example.com"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_server_down_raises_smtp_unavailable_naming_host_and_port() -> None:
    port = _closed_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, timeout=2.0)
    sender = _sender(settings)
    with pytest.raises(SmtpUnavailable, match=f"127.0.0.1:{port}"):
        _run(sender.open)

    async def use() -> None:
        async with _sender(settings) as never:
            await never.send(_envelope("x@example.com"))

    with pytest.raises(SmtpUnavailable):
        _run(use)


def test_send_before_open_and_contradictory_tls_settings_are_refused(sink: SmtpSink) -> None:
    with pytest.raises(RuntimeError, match="before open"):
        _run(lambda: _sender(_settings(sink)).send(_envelope("x@example.com")))
    with pytest.raises(ConfigError, match="exclusive"):
        SmtpSender(_settings(sink, tls=True, starttls=True))


def test_rate_limit_spaces_messages_across_the_pool(sink: SmtpSink) -> None:
    recipients = [f"r{i}@example.com" for i in range(20)]
    time = VirtualTime()

    async def go() -> None:
        async with _sender(_settings(sink, rate=50.0), time.pacer(50.0)) as sender:
            await _send_all(sender, recipients)

    _run(go)
    assert time.now == pytest.approx(19 * 0.02)  # 20 starts over three connections, 20 ms apart
    assert len(sink.messages) == 20


def test_throttling_reply_halves_the_rate_and_pauses(sink: SmtpSink) -> None:
    sink.refuse("first@example.com", 451, reply="451 4.3.0 Too much mail, slow down")
    recipients = [f"r{i}@example.com" for i in range(10)]
    time = VirtualTime()

    async def go() -> tuple[Outcome, float, float, int]:
        pacer = time.pacer(50.0, pause=0.3)
        async with _sender(_settings(sink, rate=50.0), pacer) as sender:
            throttled = await sender.send(_envelope("first@example.com"))
            start = time.now
            await _send_all(sender, recipients)
            return throttled, time.now - start, sender.rate, sender.pacer.throttles

    throttled, took, rate, throttles = _run(go)
    assert throttled.throttled and throttled.status == "temporary"
    assert (rate, throttles) == (25.0, 1)
    assert took == pytest.approx(0.3 + 9 / 25)  # the pause, then 40 ms apart instead of 20
    assert len(sink.messages) == 10


def test_421_closes_the_connection_and_pauses_an_unlimited_pool(sink: SmtpSink) -> None:
    sink.refuse("busy@example.com", 421)
    time = VirtualTime()

    async def go() -> tuple[Outcome, Outcome, float]:
        async with _sender(_settings(sink, connections=1), time.pacer(0, pause=0.4)) as sender:
            busy = await sender.send(_envelope("busy@example.com"))
            start = time.now
            after = await sender.send(_envelope("after@example.com"))
            return busy, after, time.now - start

    busy, after, waited = _run(go)
    assert (busy.status, busy.code, busy.throttled) == ("temporary", 421, True)
    assert after.status == "sent"
    assert waited == pytest.approx(0.4)
    assert sink.sessions() == 2  # the server hung up after 421: a new connection


def test_pacer_recovers_its_rate_after_calm_periods() -> None:
    now = [100.0]
    pacer = Pacer(40.0, pause=1.0, recovery=60.0, clock=lambda: now[0])
    pacer.throttled()
    pacer.throttled()  # same episode: no second halving
    assert pacer.rate == 20.0
    now[0] += 2.0
    pacer.throttled()  # a new episode soon after: halves again, longer pause
    assert pacer.rate == 10.0
    for expected in (20.0, 40.0, 40.0):
        now[0] += 61.0
        _run(pacer.wait)
        assert pacer.rate == expected


def test_slow_server_times_out_as_temporary_and_the_pool_goes_on(sink: SmtpSink) -> None:
    sink.stall("slow@example.com", 2.0)

    async def go() -> list[Outcome]:
        async with _sender(_settings(sink, connections=1, timeout=0.5)) as sender:
            return [await sender.send(_envelope(r)) for r in ("slow@example.com", "b@example.com")]

    slow, after = _run(go)
    assert (slow.status, slow.code, slow.stage) == ("temporary", None, "DATA")
    assert after.status == "sent"


def test_a_cancelled_send_leaves_the_pool_usable(sink: SmtpSink) -> None:
    sink.stall("slow@example.com", 5.0)

    async def go() -> Outcome:
        async with _sender(_settings(sink, connections=1)) as sender:
            stuck = asyncio.create_task(sender.send(_envelope("slow@example.com")))
            await asyncio.sleep(0.3)
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            return await sender.send(_envelope("next@example.com"))

    assert _run(go).status == "sent"
    assert sink.recipients() == ["next@example.com"]


def test_starttls_and_auth(tmp_path: Path) -> None:
    server_tls, client_tls = certificate(tmp_path)
    with SmtpSink(tls_context=server_tls, credentials={"digest": "s3cret"}) as sink:
        settings = _settings(sink, starttls=True, username="digest", password="s3cret")

        async def go() -> dict[str, Outcome]:
            async with SmtpSender(settings, tls_context=client_tls, local_hostname="c") as sender:
                return await _send_all(sender, ["a@example.com", "b@example.com"])

        assert {o.status for o in _run(go).values()} == {"sent"}
        assert [(m.login, m.tls) for m in sink.messages] == [("digest", True)] * 2

        wrong = settings.model_copy(update={"password": "guess"})
        with pytest.raises(SmtpUnavailable, match="refused the login of 'digest'"):
            _run(SmtpSender(wrong, tls_context=client_tls, local_hostname="c").open)


def test_sink_also_runs_inside_the_callers_event_loop() -> None:
    async def go() -> tuple[Outcome, list[str]]:
        async with SmtpSink() as sink:
            sink.refuse("gone@example.com", 550)
            async with _sender(_settings(sink, connections=2)) as sender:
                sent = await sender.send(_envelope("a@example.com"))
                gone = await sender.send(_envelope("gone@example.com"))
            assert gone.status == "permanent"
            return sent, sink.recipients()

    sent, recipients = _run(go)
    assert sent.status == "sent" and recipients == ["a@example.com"]


def test_eight_bit_is_what_every_connection_offers() -> None:
    async def opened(sink: SmtpSink) -> bool:
        async with _sender(_settings(sink, connections=2)) as sender:
            return sender.eight_bit

    with SmtpSink(eight_bit=True) as offering, SmtpSink(eight_bit=False) as plain:
        assert _run(lambda: opened(offering)) is True
        assert _run(lambda: opened(plain)) is False


def test_an_8bit_message_to_a_server_without_8bitmime_is_temporary_and_not_sent() -> None:
    with SmtpSink(eight_bit=False) as sink:
        eight_bit = Envelope(RETURN_PATH, "a@example.com", "نص\r\n".encode(), eight_bit=True)

        async def go() -> Outcome:
            async with _sender(_settings(sink, connections=1)) as sender:
                return await sender.send(eight_bit)

        outcome = _run(go)
        assert (outcome.status, outcome.code, outcome.stage) == ("temporary", None, "MAIL")
        assert "8BITMIME" in outcome.message
        assert sink.messages == [] and sink.sessions() == 0


def test_wire_bytes_are_written_as_given(sink: SmtpSink) -> None:
    # `wire` is the SMTP form (dots doubled): written as it is, the server un-stuffs it back to
    # `data`. Were it stuffed again, lines would arrive with a dot too many.
    data = b"Subject: dots\r\n\r\n.one\r\n..two\r\n.\r\n"
    wire = b"Subject: dots\r\n\r\n..one\r\n...two\r\n..\r\n"
    marked = b"X-Wire: 1\r\n" + wire  # shows which of the two went out

    async def go() -> list[Outcome]:
        async with _sender(_settings(sink, connections=1)) as sender:
            first = await sender.send(Envelope(RETURN_PATH, "a@example.com", data, wire=wire))
            second = await sender.send(Envelope(RETURN_PATH, "b@example.com", data, wire=marked))
            return [first, second]

    assert {o.status for o in _run(go)} == {"sent"}
    assert [m.data for m in sink.messages] == [data, b"X-Wire: 1\r\n" + data]
