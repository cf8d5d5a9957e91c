"""Liveness of `digest scheduler` and `digest worker`: a heartbeat their loops beat, and a
loopback HTTP endpoint (`[scheduler] health_port`, `[workers] health_port`) answering
`GET /healthz` with the heartbeat's age: 200 while it is fresh, 503 once it is stale.

Why a port rather than a heartbeat file: the same probe as `digest serve`'s /healthz
(curl, a monitoring agent, a container's health check), a dead process answers nothing at
once instead of after the stale time, and no file or permissions are shared between the
process and its prober. The endpoint runs in a thread of its own, so it still answers when
the loop it watches is stuck: that is exactly when the age grows and the answer turns 503.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from digest.errors import ConfigError

__all__ = ["LOOPBACK", "Heartbeat", "LivenessServer", "liveness"]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"  # probes run on the machine (systemd, curl, an agent): never exposed


class Heartbeat:
    """When the watched loop last showed progress, by `clock` (monotonic seconds); a new
    heartbeat counts as a beat (a process that is starting is alive)."""

    def __init__(
        self, process: str, stale_after: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.process = process
        self.stale_after = stale_after
        self.clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        self._state = "starting"

    def beat(self, state: str | None = None) -> None:
        """The loop made progress (and is now in `state`, e.g. leading or following)."""
        with self._lock:
            self._last = self.clock()
            if state is not None:
                self._state = state

    def age(self) -> float:
        with self._lock:
            return max(0.0, self.clock() - self._last)

    def answer(self) -> tuple[int, dict[str, object]]:
        """The HTTP status and JSON body of /healthz."""
        age = self.age()
        fresh = age <= self.stale_after
        with self._lock:
            state = self._state
        return (200 if fresh else 503), {
            "status": "ok" if fresh else "stale",
            "process": self.process,
            "state": state,
            "heartbeat_age_seconds": round(age, 3),
            "stale_after_seconds": self.stale_after,
        }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/healthz":
            self._reply(404, {"status": "not found"})
            return
        status, body = self.server.heartbeat.answer()
        self._reply(status, body)

    def _reply(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # A probe every few seconds would flood the log: request lines only at debug.
        logger.debug("healthz: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], heartbeat: Heartbeat) -> None:
        self.heartbeat = heartbeat
        super().__init__(address, _Handler)


class LivenessServer:
    """Serves `heartbeat` at http://127.0.0.1:`port`/healthz from a daemon thread while
    open (port 0: any free one, read back from `port`). Binding fails with OSError."""

    def __init__(self, heartbeat: Heartbeat, port: int) -> None:
        self._server = _Server((LOOPBACK, port), heartbeat)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"healthz-{heartbeat.process}",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/healthz"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> LivenessServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def liveness(heartbeat: Heartbeat, port: int, setting: str) -> LivenessServer | None:
    """The endpoint on `port` (None for 0: off). A port that cannot be bound is a
    ConfigError naming `setting`, before the process starts its work."""
    if port == 0:
        return None
    try:
        server = LivenessServer(heartbeat, port)
    except OSError as exc:
        raise ConfigError(
            f"{setting} = {port}: cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc}); "
            "choose a free port, or 0 for no liveness endpoint"
        ) from None
    logger.info("liveness: %s answers on %s", heartbeat.process, server.url)
    return server
