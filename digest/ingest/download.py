"""A feed's HTTP response read within one deadline (connect to last byte) and a decoded-size cap.

httpx's timeouts bound each socket operation, not the whole: a server that sends its headers
or its body a byte a second never trips them. Here a watchdog thread shuts the connection's
socket down when the deadline passes, whatever the fetch is waiting for (TLS handshake,
headers, body). The body is read raw and decompressed here, by at most the bytes still
allowed, so a small gzip bomb never grows past `max_bytes` in memory; a response with
stacked encodings (`gzip, gzip`) or one we did not offer is refused.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any

import httpx

from digest.ingest.documents import FeedError

ACCEPT_ENCODING = "gzip, deflate"  # what `BoundedDecoder` reads (no brotli module here)


class Deadline:
    """One deadline for a whole fetch: pass `trace` as the request's "trace" extension.

    Every connection the fetch opens (redirects included) is registered as it is made; when
    the deadline passes, their sockets are shut down, so a blocked read returns at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._timer.cancel()
        # Joined: a parse pool forks only while this is the process's one thread.
        self._timer.join()

    def remaining(self) -> float:
        return max(self.ends - time.monotonic(), 0.001)

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.ends:
            self.expired = True
            raise timed_out(self.seconds)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class BoundedDecoder:
    """gzip or deflate decompression giving at most the bytes asked for each time."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._head = b""  # "deflate": the first bytes, until they tell zlib-wrapped or raw
        self._inflate: Any = None if encoding == "deflate" else zlib.decompressobj(31)

    def decode(self, data: bytes, room: int) -> bytes:
        """The bytes `data` decodes to; more than `room` of them means over the cap."""
        if self._inflate is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            wrapped = data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0
            # Some servers send "deflate" raw, without the zlib wrapper HTTP asks for.
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            out: bytes = self._inflate.decompress(data, room + 1)
        except zlib.error as exc:
            raise FeedError(f"the {self.encoding} response does not decompress: {exc}") from None
        return out  # room + 1 bytes when it stopped there: over the cap, whatever follows


def decoder_for(encodings: Sequence[str]) -> BoundedDecoder | None:
    """The decoder for a response's Content-Encoding values (None: the bytes as they are)."""
    names = [
        name.strip().lower()
        for value in encodings
        for name in value.split(",")
        if name.strip().lower() not in ("", "identity")
    ]
    if len(names) > 1:
        raise FeedError(f"stacked content encodings ({', '.join(names)}) are refused")
    if not names:
        return None
    name = {"x-gzip": "gzip"}.get(names[0], names[0])
    if name not in ("gzip", "deflate"):
        raise FeedError(f"content encoding {names[0]!r} is not supported (we asked for gzip)")
    return BoundedDecoder(name)


def read_body(response: httpx.Response, max_bytes: int, deadline: Deadline) -> bytes:
    """The decoded body, FeedError past `max_bytes` (sent or decoded) or past the deadline."""
    decoder = decoder_for(response.headers.get_list("content-encoding"))
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes, f"it announces {int(declared)} bytes")
    body = bytearray()
    received = 0
    for chunk in response.iter_raw():
        received += len(chunk)
        if received > max_bytes:
            raise too_large(max_bytes, "the download was stopped there")
        body += decoder.decode(chunk, max_bytes - len(body)) if decoder else chunk
        if len(body) > max_bytes:
            raise too_large(max_bytes, "decompressed; the download was stopped there")
        deadline.check()
    deadline.check()
    return bytes(body)


def too_large(max_bytes: int, why: str) -> FeedError:
    return FeedError(f"response larger than {max_bytes} bytes ({why}; see ingest.max_bytes)")


def timed_out(timeout: float) -> FeedError:
    return FeedError(f"timed out after {timeout:g} s (see ingest.timeout)")
