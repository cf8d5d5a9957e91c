"""The SMTP rows of bench/send_bench.py that send pre-built bytes, no database, no rendering:
what the wire allows, to compare `digest send` against.

(L)  the raw-socket limit: a minimal asyncio SMTP writer (no library): per connection the
     greeting and one EHLO, then per message MAIL/RCPT/DATA in one write (the server must offer
     PIPELINING), their three replies, the message bytes (CRLF, dot-stuffed once beforehand)
     with the final ".", and its reply. Every reply code is checked: a refusal stops the row.
(a)  raw aiosmtplib clients, one task per connection, `sendmail` per message.
(a') the same bytes through our SmtpSender pool (pacer, reconnects): the transport the
     pipeline really uses.
All three share one message set: `prebuilt` messages of our MIME code at a given size, taken
in turn by one task per connection until `count` are sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.config import SenderSettings, Settings

FROM = "digest@news.example.org"
DISTINCT = 64  # distinct messages in a set, sent in turn
Result = dict[str, float]


def prebuilt(sender: SenderSettings, size: int, count: int = DISTINCT) -> list[tuple[str, bytes]]:
    """`count` distinct messages of ~`size` bytes built by our MIME code (same structure as
    the digest's), as (recipient, CRLF message bytes)."""
    from digest.send.mime import MessageParts, MessageTemplate, SharedHeaders

    shared = SharedHeaders(list_name="النشرة اليومية", list_slug="daily", subject="نشرتك اليومية")
    template = MessageTemplate(sender, shared)
    filler = "<p>" + "نص الخبر في النشرة " * 40 + "</p>\n"
    repeats = 1
    for _ in range(3):  # scale the body until the whole message has the asked size
        html, text = filler * repeats, "نص الخبر\n" * (repeats * 8)
        built = template.build(
            MessageParts(
                to_address="x@example.org", to_name="", html=html, text=text, unsubscribe_url="u"
            )
        )
        repeats = max(1, round(repeats * size / len(built)))
    html, text = filler * repeats, "نص الخبر\n" * (repeats * 8)
    messages = []
    for number in range(count):
        rcpt = f"reader{number}@example{number % 97}.org"
        data = template.build(
            MessageParts(
                to_address=rcpt,
                to_name=f"قارئ {number}",
                html=html,
                text=text,
                unsubscribe_url=f"https://news.example.org/u/{number}",
            )
        )
        messages.append((rcpt, data))
    return messages


def _result(sent: int, seconds: float, cpu: float, messages: list[tuple[str, bytes]]) -> Result:
    average = sum(len(data) for _, data in messages) / len(messages)
    return {"messages": sent, "seconds": seconds, "cpu": cpu, "bytes": average}


def run_ceiling(settings: Settings, count: int, size: int, via: str) -> Result:
    """(a) raw aiosmtplib clients (`via` "raw"), or (a') our SmtpSender pool ("pool"),
    sending `count` pre-built messages over settings.smtp.connections connections."""
    import aiosmtplib

    from digest.send.outcome import Envelope
    from digest.send.smtp import SmtpSender

    messages = prebuilt(settings.sender, size)
    connections, port = settings.smtp.connections, settings.smtp.port

    async def raw() -> tuple[int, float, float]:
        clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(connections)]
        await asyncio.gather(*(client.connect() for client in clients))
        numbers = iter(range(count))  # shared: each task takes the next message

        async def worker(client: aiosmtplib.SMTP) -> int:
            sent = 0
            for number in numbers:
                rcpt, data = messages[number % len(messages)]
                refused, _ = await client.sendmail(FROM, [rcpt], data)
                sent += not refused
            return sent

        start, cpu = time.perf_counter(), time.process_time()
        sent = sum(await asyncio.gather(*(worker(client) for client in clients)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        await asyncio.gather(*(client.quit() for client in clients))
        return sent, seconds, cpu

    async def pooled() -> tuple[int, float, float]:
        async with SmtpSender(settings.smtp) as sender:
            numbers = iter(range(count))

            async def worker() -> int:
                sent = 0
                for number in numbers:
                    rcpt, data = messages[number % len(messages)]
                    outcome = await sender.send(Envelope(FROM, rcpt, data))
                    sent += outcome.status == "sent"
                return sent

            start, cpu = time.perf_counter(), time.process_time()
            sent = sum(await asyncio.gather(*(worker() for _ in range(connections))))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return sent, seconds, cpu

    sent, seconds, cpu = asyncio.run(raw() if via == "raw" else pooled())
    if sent != count:
        raise SystemExit(f"({via}) {count - sent} of {count} messages refused")
    return _result(sent, seconds, cpu, messages)


class SmtpRefused(Exception):
    """A reply the raw writer did not expect: the (L) row fails instead of counting it."""


async def _reply(reader: asyncio.StreamReader, expected: int, what: str) -> bytes:
    """One (possibly multi-line) reply, all its lines; SmtpRefused unless its code is
    `expected`."""
    lines = []
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise SmtpRefused(f"connection closed waiting for the reply to {what}")
        lines.append(line)
        if line[3:4] != b"-":
            break
    if line[:3] != b"%d" % expected:
        raise SmtpRefused(f"{what}: expected {expected}, got {b''.join(lines)!r}")
    return b"".join(lines)


def wire_messages(messages: list[tuple[str, bytes]]) -> list[tuple[bytes, bytes]]:
    """Per message, once: (MAIL FROM + RCPT TO + DATA in one buffer, the message bytes
    dot-stuffed, CRLF-ended and followed by the final "."). BODY=8BITMIME when a message
    holds bytes above 127 (smtp-sink offers the extension)."""
    wired = []
    for rcpt, data in messages:
        body = b"" if data.isascii() else b" BODY=8BITMIME"
        commands = b"MAIL FROM:<%s>%s\r\nRCPT TO:<%s>\r\nDATA\r\n" % (
            FROM.encode(),
            body,
            rcpt.encode(),
        )
        text = data if data.endswith(b"\r\n") else data + b"\r\n"
        text = (b"." if text.startswith(b".") else b"") + text.replace(b"\r\n.", b"\r\n..")
        wired.append((commands, text + b".\r\n"))
    return wired


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _open(port: int) -> Stream:
    """A connection of the (L) writer, greeted and past its one EHLO."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _reply(reader, 220, "the greeting")
    writer.write(b"EHLO bench.example.org\r\n")
    if b"PIPELINING" not in (await _reply(reader, 250, "EHLO")).upper():
        raise SmtpRefused("the server does not offer PIPELINING")
    return reader, writer


async def _send(stream: Stream, wired: list[tuple[bytes, bytes]], numbers: Iterator[int]) -> int:
    """Messages over one connection until `numbers` runs out: two writes, four replies each."""
    reader, writer = stream
    sent = 0
    for number in numbers:
        commands, text = wired[number % len(wired)]
        writer.write(commands)
        await _reply(reader, 250, "MAIL FROM")
        await _reply(reader, 250, "RCPT TO")
        await _reply(reader, 354, "DATA")
        writer.write(text)
        await _reply(reader, 250, "the end of DATA")
        sent += 1
    return sent


async def _quit(stream: Stream) -> None:
    reader, writer = stream
    writer.write(b"QUIT\r\n")
    await _reply(reader, 221, "QUIT")
    writer.close()


def run_limit(settings: Settings, count: int, size: int) -> Result:
    """(L) the raw-socket limit: `count` pre-built messages over settings.smtp.connections
    connections of the minimal writer above (connected before the clock starts, as (a))."""
    messages = prebuilt(settings.sender, size)
    wired = wire_messages(messages)
    connections, port = settings.smtp.connections, settings.smtp.port

    async def go() -> tuple[int, float, float]:
        streams = await asyncio.gather(*(_open(port) for _ in range(connections)))
        numbers = iter(range(count))  # shared: each connection takes the next message
        start, cpu = time.perf_counter(), time.process_time()
        sent = sum(await asyncio.gather(*(_send(stream, wired, numbers) for stream in streams)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        await asyncio.gather(*(_quit(stream) for stream in streams))
        return sent, seconds, cpu

    sent, seconds, cpu = asyncio.run(go())
    if sent != count:
        raise SystemExit(f"(L) sent {sent} of {count} messages")
    return _result(sent, seconds, cpu, messages)
