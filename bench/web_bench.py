"""Open-pixel throughput of `digest serve` beside a bare uvicorn hello-world, on loopback.

Both servers run as their own process (one uvicorn worker each) and get the same load:
`wrk` when it is installed (Debian: `apt-get install wrk`), else a keep-alive asyncio
client in this process, with the same connections and duration. After the pixel run the
server is stopped with SIGTERM and every open it answered must be in the event table.

    .venv/bin/python bench/web_bench.py [--seconds 10] [--connections 64] [--client auto|wrk|python]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.catalog.topics import add_topic  # noqa: E402
from digest.config import load_settings  # noqa: E402
from digest.db.engine import make_engine, upgrade  # noqa: E402
from digest.db.models import Delivery, Edition, Event  # noqa: E402
from digest.tracking.tokens import Purpose, Signer  # noqa: E402
from subscribers.lists import ListSpec, create_list  # noqa: E402
from subscribers.people import Consent, Person, subscribe  # noqa: E402

AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0"
BARE = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})

import sys, uvicorn
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(directory: Path) -> tuple[str, str]:
    """A database with one sent delivery; returns (database URL, its open-pixel path)."""
    url = f"sqlite:///{directory / 'bench.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = load_settings(ROOT / "settings.toml", {"database.url": url})
    with Session(engine) as session:
        topic = add_topic(session, slug="politics", name="سياسة")
        daily = create_list(
            session, ListSpec(slug="daily", name="النشرة", topic_ids=[topic.id or 0])
        )
        subscription = subscribe(
            session, Person("reader@example.org", "UTC"), daily, consent=Consent(confirmed=True)
        )
        edition = Edition(list_id=daily.id or 0, local_date=date.today(), status="sent")
        session.add(edition)
        session.flush()
        sent = datetime.now(UTC) - timedelta(hours=1)
        delivery = Delivery(
            edition_id=edition.id or 0,
            list_id=daily.id or 0,
            subscriber_id=subscription.subscriber_id,
            status="sent",
            window_start=sent - timedelta(days=1),
            window_end=sent,
            sent_at=sent,
        )
        session.add(delivery)
        session.commit()
        token = Signer(settings.web.secret_key).dumps(Purpose.OPEN, delivery.id or 0)
    engine.dispose()
    return url, f"/o/{token}.gif"


def start(command: list[str], env: dict[str, str], port: int, path: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server {' '.join(command)} did not start")


async def python_load(port: int, path: str, connections: int, seconds: float) -> Counter[int]:
    """Keep-alive GETs from `connections` tasks for `seconds`; status -> responses."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {AGENT}\r\n\r\n"
    ).encode()
    counts: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                counts[int(head[9:12])] += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return counts


def wrk_load(port: int, path: str, connections: int, seconds: float) -> tuple[int, int]:
    """(responses, non-2xx) from wrk with one thread per core."""
    result = subprocess.run(
        [
            "wrk",
            f"-t{min(2, connections)}",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-H",
            f"User-Agent: {AGENT}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    total = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    return total, int(bad.group(1)) if bad else 0


def measure(client: str, port: int, path: str, connections: int, seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    if client == "wrk":
        total, bad = wrk_load(port, path, connections, seconds)
    else:
        counts = asyncio.run(python_load(port, path, connections, seconds))
        total, bad = sum(counts.values()), sum(v for k, v in counts.items() if k != 200)
    elapsed = time.perf_counter() - started
    return {"responses": total, "errors": bad, "rps": total / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    with tempfile.TemporaryDirectory() as tmp:
        db_url, pixel = prepare(Path(tmp))
        env = {**os.environ, "DIGEST_DATABASE__URL": db_url}
        results = {}
        port = free_port()
        bare = start([sys.executable, "-c", BARE, str(port)], env, port, "/")
        try:
            results["bare"] = measure(client, port, "/", args.connections, args.seconds)
        finally:
            bare.terminate()
            bare.wait(timeout=30)
        port = free_port()
        digest = Path(sys.executable).with_name("digest")
        server = start([str(digest), "serve", "--port", str(port)], env, port, pixel)
        try:
            results["pixel"] = measure(client, port, pixel, args.connections, args.seconds)
        finally:
            server.send_signal(signal.SIGTERM)  # the shutdown writes the last batch
            server.wait(timeout=60)
        engine = make_engine(db_url)
        with Session(engine) as session:
            stored = int(session.exec(select(func.count()).select_from(Event)).one())
        engine.dispose()
    print(f"load: {client}, {args.connections} connections, {args.seconds:.0f} s each, loopback")
    for name, result in results.items():
        print(
            f"{name:>6}: {result['rps']:>9,.0f} requests/s "
            f"({result['responses']:,} responses, {result['errors']} errors)"
        )
    ratio = results["pixel"]["rps"] / results["bare"]["rps"]
    print(f"pixel / bare: {ratio:.0%} (target >= 50%)")
    answered = results["pixel"]["responses"] - results["pixel"]["errors"] + 1  # +1: readiness probe
    # wrk stops counting at the deadline while up to one request per connection is in flight.
    in_flight = args.connections if client == "wrk" else 0
    complete = answered <= stored <= answered + in_flight
    print(f"opens answered: {answered:,}, stored in the database: {stored:,}: ", end="")
    print("all stored" if complete else "MISSING EVENTS")
    if not complete or ratio < 0.5:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
