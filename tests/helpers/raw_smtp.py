"""A loopback SMTP server scripted line by line, for what aiosmtpd will not do: garbage,
silence, a hang-up at any step, replies written byte by byte, 354 after a refused RCPT,
replies injected before TLS. Async only::

    async with RawSmtp(Script(answers={"RCPT": ["550 5.1.1 no such user"]})) as server:
        ... connect to 127.0.0.1:server.port ...
        assert server.verbs() == ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

CLOSE = "<close>"  # an answer: hang up without a word
SILENT = "<silent>"  # an answer: never answer (until the client hangs up)


@dataclass
class Script:
    """What RawSmtp says. `answers`: per command verb ("MAIL", "RCPT", "DATA", "." for the
    content's final reply, "<greeting>"), answers used once each in turn, then the default
    one; an answer may hold several lines ("\\r\\n"-joined, written at once), or be CLOSE or
    SILENT. `gates`: a verb is answered only once its event is set. `trickle`: every reply is
    written one byte at a time. `tls`: the server context STARTTLS switches to."""

    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME")
    answers: dict[str, list[str]] = field(default_factory=dict)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    trickle: bool = False
    tls: ssl.SSLContext | None = None

    def answer(self, verb: str) -> str:
        queued = self.answers.get(verb)
        if queued:
            return queued.pop(0)
        if verb == "EHLO":
            *lines, last = ["raw.test", *self.extensions]
            return "".join(f"250-{line}\r\n" for line in lines) + f"250 {last}"
        defaults = {"<greeting>": "220 raw.test ESMTP", "DATA": "354 go ahead", "QUIT": "221 bye"}
        defaults.update({".": "250 2.0.0 queued", "STARTTLS": "220 2.0.0 go ahead"})
        return defaults.get(verb, "250 2.0.0 OK")


class RawSmtp:
    """A loopback SMTP server that follows `script`; keeps every command line it read
    (`lines`) and each message's content as it came over the wire, still dot-stuffed."""

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.port = 0
        self.lines: list[bytes] = []
        self.messages: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> RawSmtp:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def verbs(self) -> list[str]:
        return [_verb(line) for line in self.lines]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.append(task)
        try:
            await self._talk(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass  # the client hung up, or the test is over (cancelled by __aexit__)
        finally:
            writer.close()

    async def _talk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        verb = "<greeting>"
        while True:
            if verb in self.script.gates:
                await self.script.gates[verb].wait()
            reply = self.script.answer(verb)
            if reply == SILENT:
                await reader.read()
                return
            if reply == CLOSE:
                return
            await self._say(writer, reply)
            if verb == "STARTTLS" and reply.startswith("220"):
                assert self.script.tls is not None
                await writer.start_tls(self.script.tls)
            if verb == "DATA" and reply.startswith("354"):
                self.messages.append(await _content(reader))
                verb = "."
                continue
            if verb == "QUIT":
                return
            line = await reader.readline()
            if not line:
                return
            self.lines.append(line)
            verb = _verb(line)

    async def _say(self, writer: asyncio.StreamWriter, reply: str) -> None:
        data = (reply + "\r\n").encode()
        if not self.script.trickle:
            writer.write(data)
            await writer.drain()
            return
        for byte in data:  # one segment each (asyncio sets TCP_NODELAY), pacing, no timing
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)


def _verb(line: bytes) -> str:
    return line.split(b" ", 1)[0].split(b":", 1)[0].strip().upper().decode("ascii", "replace")


async def _content(reader: asyncio.StreamReader) -> bytes:
    lines = []
    while (line := await reader.readline()) not in (b".\r\n", b""):
        lines.append(line)
    return b"".join(lines)
