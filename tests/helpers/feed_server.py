"""A real HTTP server on 127.0.0.1 (free port, own thread) that serves feeds for ingest tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    """What one path answers."""

    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None  # answer 304 when If-None-Match carries it
    last_modified: str | None = None  # answer 304 when If-Modified-Since carries it
    delay: float = 0.0  # seconds before the status line
    stream_bytes: int = 0  # send this many filler bytes instead of `body`
    announce_length: bool = True  # send Content-Length with stream_bytes
    drip_seconds: float = 0.0  # send `body` a byte-chunk at a time over this long
    head_drip_seconds: float = 0.0  # send the status line and headers a byte at a time
    headers: dict[str, str] = field(default_factory=dict)  # any other response headers


@dataclass
class Request:
    path: str
    headers: dict[str, str]


@dataclass
class FeedServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)  # paths answered to the last byte
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append(
                Request(self.path, {k.lower(): v for k, v in self.headers.items()})
            )
            route = server.routes.get(self.path)
            # The client may give up (size cap, timeout): that is the point of some routes.
            with suppress(BrokenPipeError, ConnectionResetError):
                self._answer(route)
                server.completed.append(self.path)

        def _answer(self, route: Route | None) -> None:
            if route is None:
                self.send_error(404, "Not Found")
                return
            time.sleep(route.delay)
            not_modified = (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
            )
            self.send_response(304 if not_modified else route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.etag:
                self.send_header("ETag", route.etag)
            if route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            if not_modified:
                self.end_headers()
                return
            self.send_header("Content-Type", route.content_type)
            if route.stream_bytes:
                self._stream(route)
                return
            self.send_header("Content-Length", str(len(route.body)))
            if route.head_drip_seconds:
                self._drip_head(route.head_drip_seconds)
            self.end_headers()
            if route.drip_seconds:
                pause = route.drip_seconds / max(len(route.body), 1)
                for start in range(len(route.body)):
                    self.wfile.write(route.body[start : start + 1])
                    self.wfile.flush()
                    time.sleep(pause)
                return
            self.wfile.write(route.body)

        def _drip_head(self, seconds: float) -> None:
            head = b"".join(self._headers_buffer)  # type: ignore[attr-defined]
            self._headers_buffer = []
            for start in range(len(head)):
                self.wfile.write(head[start : start + 1])
                self.wfile.flush()
                time.sleep(seconds / len(head))

        def _stream(self, route: Route) -> None:
            chunk = b"<!-- filler -->" * 4096
            if route.announce_length:
                self.send_header("Content-Length", str(route.stream_bytes))
                self.end_headers()
                write = self.wfile.write
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def write(data: bytes) -> int:
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    return len(data)

            sent = 0
            while sent < route.stream_bytes:
                piece = chunk[: route.stream_bytes - sent]
                write(piece)
                sent += len(piece)
            if not route.announce_length:
                self.wfile.write(b"0\r\n\r\n")

    return Handler


@contextmanager
def serving() -> Iterator[FeedServer]:
    """A started server; stopped (without waiting for slow handlers) at the end."""
    state = FeedServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
