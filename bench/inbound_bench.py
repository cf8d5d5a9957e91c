"""Benchmark inbound processing: a burst of bounces, complaints and auto-replies after a send.

Run: python bench/inbound_bench.py [--sizes 5000,20000] [--quick] [--connections 8,16]
                                   [--repeat 3] [--profile DIR]

Prints, side by side:
(a) `digest inbound` over SMTP on loopback, as the command runs it: the aiosmtpd server
    (signed RCPT check, 250 only once spooled: the messages that arrived together written
    to one file, fsynced, renamed into the spool's new/, the folder fsynced) in one process,
    the spool's drain (Processor, batches of up to 200) in a spawned child, on a fresh
    SQLite file holding the deliveries the messages name; aiosmtplib clients over several
    connections (a burst comes from many MTAs at once) in a third process. End to end: from
    the clients' first connection until every message has its inbound_event row (the
    drain's catching up after the last 250 counts);
(b) `digest inbound process DIR`'s Python entry (`read_sources` + `feed` + `Processor`,
    batches of 100) on a Maildir holding the same messages (Return-Path and Delivered-To
    prepended, as a local MTA writes them);
(c) the raw ceiling: a bare aiosmtpd server that accepts and discards, the same clients,
    the same connection count and the same messages.
(a) and (c) run --repeat times for each connection count, interleaved (the machine may be
loaded by other work meanwhile); the table shows medians.
Each variant runs in its own subprocesses, so each peak RSS (ru_maxrss) is its own; the
deliveries (one subscriber, subscription and sent delivery per message, inserted in bulk)
are written by a separate setup subprocess, untimed. The messages are mixed: 40% DSN hard
bounces (5.1.1), 25% DSN soft bounces (4.2.2 mailbox full), 10% ARF complaints, 25%
auto-replies, each carrying the signed b- token of an existing delivery in its envelope
recipient and in the returned headers. CPU is the server's (event loop + processing child)
or the processing process's, per message; the clients' is printed apart. The goal (issue
15): (a) >= 300 messages/s end to end on a 2-core machine, >= 0.5 of (c), memory flat in
the number of messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.tracking.verp import Verp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DOMAIN = "bounces.example.org"
SECRET = "bench-secret-key-bench-secret-key"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
KINDS = ["hard"] * 8 + ["soft"] * 5 + ["complaint"] * 2 + ["auto"] * 5  # of every 20


def _settings(db: Path, port: int = 2525) -> Settings:
    from digest.config import load_settings

    return load_settings(
        ROOT / "settings.toml",
        {
            "database.url": f"sqlite:///{db}",
            "web.secret_key": SECRET,
            "inbound.domain": DOMAIN,
            "inbound.port": str(port),
        },
    )


def _verp() -> Verp:
    from digest.tracking.verp import Verp

    return Verp(SECRET, DOMAIN)


def _email(number: int) -> str:
    return f"reader{number}@example.net"


def _message_id(number: int) -> str:
    return f"<bench.{number}@news.example.org>"


def message(number: int, verp: Verp) -> tuple[str, bytes]:
    """The envelope recipient and the bytes of message `number` (delivery id number + 1)."""
    from digest.tracking.verp import VerpKind

    delivery = number + 1
    rcpt = verp.address(VerpKind.BOUNCE, delivery)
    kind = KINDS[number % len(KINDS)]
    original = (
        f"Return-Path: <{rcpt}>\r\nFrom: Daily <digest@news.example.org>\r\n"
        f"To: <{_email(number)}>\r\nSubject: =?utf-8?b?2KfZhNmG2LTYsdip?=\r\n"
        f"Message-ID: {_message_id(number)}\r\nList-Id: <daily.news.example.org>\r\n"
    )
    if kind == "auto":
        body = (
            f"From: <{_email(number)}>\r\nTo: <{rcpt}>\r\nSubject: Out of office\r\n"
            f"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo.{number}@example.net>\r\n"
            f"In-Reply-To: {_message_id(number)}\r\n\r\nI am away until Monday.\r\n"
        )
        return rcpt, body.encode()
    if kind == "complaint":
        return rcpt, _arf(number, rcpt, original).encode()
    status, action, text = ("5.1.1", "failed", "550 5.1.1 user unknown")
    if kind == "soft":
        status, action, text = ("4.2.2", "failed", "452 4.2.2 mailbox full")
    return rcpt, _dsn(number, rcpt, original, status, action, text).encode()


def _dsn(number: int, rcpt: str, original: str, status: str, action: str, text: str) -> str:
    boundary = f"dsn{number}"
    return (
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: <{rcpt}>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn.{number}@mx.example.net>\r\nAuto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        f' boundary="{boundary}"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n'
        f"I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n"
        f"\r\nFinal-Recipient: rfc822; {_email(number)}\r\nOriginal-Recipient: rfc822; "
        f"{_email(number)}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Remote-MTA: dns; mx.example.net\r\nDiagnostic-Code: smtp; {text}\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n"
        f"--{boundary}--\r\n"
    )


def _arf(number: int, rcpt: str, original: str) -> str:
    boundary = f"arf{number}"
    return (
        f"From: <feedback@fbl.example.net>\r\nTo: <{rcpt}>\r\nSubject: FW: daily\r\n"
        f"Message-ID: <arf.{number}@fbl.example.net>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=feedback-report;"
        f' boundary="{boundary}"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n'
        f"This is an email abuse report.\r\n\r\n--{boundary}\r\n"
        f"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
        f"User-Agent: Bench-FBL/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: {_email(number)}\r\n"
        f"Arrival-Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n\r\n--{boundary}\r\n"
        f"Content-Type: message/rfc822\r\n\r\n{original}\r\nThe digest.\r\n\r\n"
        f"--{boundary}--\r\n"
    )


def run_setup(db: Path, count: int) -> int:
    """Schema, a list, a sending edition, and `count` subscribers with a sent delivery each."""
    from sqlalchemy import insert

    from digest.db.engine import make_engine, upgrade
    from digest.db.tables import DELIVERY, EDITION
    from subscribers.tables import MAILING_LIST, SUBSCRIBER, SUBSCRIPTION
    from subscribers.validate import email_key

    start = time.perf_counter()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with engine.begin() as connection:
        list_id, edition_id = 1, 1
        connection.execute(
            insert(MAILING_LIST).values(id=list_id, slug="daily", name="Daily", created_at=NOW)
        )
        connection.execute(
            insert(EDITION).values(
                id=edition_id,
                list_id=list_id,
                local_date=NOW.date(),
                status="sending",
                created_at=NOW,
            )
        )
        people = [
            {"id": n + 1, "email": _email(n), "email_key": email_key(_email(n)), "created_at": NOW}
            for n in range(count)
        ]
        connection.execute(insert(SUBSCRIBER), people)
        connection.execute(
            insert(SUBSCRIPTION),
            [
                {
                    "subscriber_id": n + 1,
                    "list_id": list_id,
                    "status": "active",
                    "requested_at": NOW,
                }
                for n in range(count)
            ],
        )
        connection.execute(
            insert(DELIVERY),
            [
                {
                    "id": n + 1,
                    "edition_id": edition_id,
                    "list_id": list_id,
                    "subscriber_id": n + 1,
                    "status": "sent",
                    "window_start": NOW,
                    "window_end": NOW,
                    "topic_ids": [],
                    "article_ids": [],
                    "message_id": _message_id(n),
                    "created_at": NOW,
                    "updated_at": NOW,
                    "sent_at": NOW,
                }
                for n in range(count)
            ],
        )
    engine.dispose()
    _emit({"seconds": time.perf_counter() - start})
    return 0


def run_maildir_fill(folder: Path, count: int) -> int:
    """A Maildir of the same messages, as a local MTA writes them (untimed)."""
    verp = _verp()
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for number in range(count):
        rcpt, raw = message(number, verp)
        head = f"Return-Path: <>\r\nDelivered-To: {rcpt}\r\n".encode()
        (folder / "new" / f"{number}.bench:2,").write_bytes(head + raw)
    _emit({"messages": count})
    return 0


def _profiled(profile: Path | None) -> cProfile.Profile | None:
    if profile is None:
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _dump(profiler: cProfile.Profile | None, profile: Path | None) -> None:
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)


def run_server(db: Path, port: int, spool: Path, profile: Path | None) -> int:
    """(a) our server, as `digest inbound` runs it, until SIGTERM; then its peak RSS (the
    event loop's process and the processing child's) and the database's figures. With
    `profile`, the event loop's thread is profiled (the processing is (b)'s code)."""
    from sqlalchemy import func, select

    from digest.db.engine import make_engine
    from digest.db.tables import INBOUND_EVENT, INBOUND_MESSAGE
    from digest.inbound import spool as spooling
    from digest.inbound.server import serve

    settings = _settings(db, port)
    inbound = settings.inbound.model_copy(update={"spool_dir": str(spool)})
    settings = settings.model_copy(update={"inbound": inbound})
    engine = make_engine(settings.database.url)
    groups = [0]
    write = spooling.Spool.write

    def counted(self: Any, batch: Any) -> Any:  # how many files (fsync groups) were written
        groups[0] += 1
        return write(self, batch)

    spooling.Spool.write = counted  # type: ignore[method-assign]

    def ready(host: str, bound: int) -> None:
        print(f"listening on {host}:{bound}", flush=True)

    profiler = _profiled(profile)
    serve(settings, engine, ready=ready)
    _dump(profiler, profile)
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(INBOUND_MESSAGE)).scalar()
        kinds: dict[str, int] = dict(
            connection.execute(
                select(INBOUND_EVENT.c.kind, func.count()).group_by(INBOUND_EVENT.c.kind)
            ).all()
        )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    _emit(
        {
            "stored": float(stored or 0),
            "groups": float(groups[0]),
            "kinds": kinds,
            "child_peak_mb": children.ru_maxrss / 1024,
            "child_cpu": children.ru_utime + children.ru_stime,
        }
    )
    return 0


def run_ceiling_server(port: int) -> int:
    """(c) a bare aiosmtpd server that accepts everything and keeps nothing, until SIGTERM."""
    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        handler = Discard()
        listener = await loop.create_server(
            lambda: SMTP(handler, hostname=DOMAIN, enable_SMTPUTF8=True, loop=loop),
            host="127.0.0.1",
            port=port,
        )
        print(f"listening on 127.0.0.1:{port}", flush=True)
        await stop.wait()
        listener.close()

    asyncio.run(main())
    _emit({})
    return 0


def run_clients(port: int, count: int, connections: int) -> int:
    """aiosmtplib clients over `connections` connections, each message made on the fly."""
    import aiosmtplib

    verp = _verp()

    async def main() -> tuple[int, float, float, float, int]:
        clients = [
            aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=600)
            for _ in range(connections)
        ]
        await asyncio.gather(*(client.connect() for client in clients))
        numbers = iter(range(count))  # shared: each connection takes the next message
        sizes = 0

        async def worker(client: aiosmtplib.SMTP) -> int:
            nonlocal sizes
            accepted = 0
            for number in numbers:
                rcpt, raw = message(number, verp)
                sizes += len(raw)
                refused, _ = await client.sendmail("", [rcpt], raw)  # raises unless 250
                accepted += not refused
            return accepted

        start, cpu = time.monotonic(), time.process_time()
        accepted = sum(await asyncio.gather(*(worker(client) for client in clients)))
        seconds, cpu = time.monotonic() - start, time.process_time() - cpu
        await asyncio.gather(*(client.quit() for client in clients))
        return accepted, start, seconds, cpu, sizes

    accepted, start, seconds, cpu, sizes = asyncio.run(main())
    assert accepted == count, f"{count - accepted} messages refused"
    _emit(
        {
            "messages": accepted,
            "started": start,  # CLOCK_MONOTONIC: the same clock in every process
            "seconds": seconds,
            "client_cpu": cpu,
            "bytes": sizes / count,
        }
    )
    return 0


def run_maildir(db: Path, folder: Path, profile: Path | None) -> int:
    """(b) `digest inbound process DIR`'s entry on the Maildir."""
    from digest.db.engine import make_engine
    from digest.inbound.process import Processor
    from digest.inbound.sources import read_sources
    from digest.inbound.tally import Tally, feed

    settings = _settings(db)
    engine = make_engine(settings.database.url)
    processor = Processor(engine, settings)
    tally = Tally()
    profiler = _profiled(profile)
    start, cpu = time.perf_counter(), time.process_time()
    items = read_sources([str(folder)], max_bytes=settings.inbound.max_message_bytes)
    feed(processor.process, items, tally)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _dump(profiler, profile)
    kinds = {k: v for k, v in tally.as_dict()["kinds"].items() if v}
    _emit({"messages": tally.messages, "seconds": seconds, "cpu": cpu, "kinds": kinds})
    return 0


def _emit(result: dict[str, Any]) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_mb"] = usage.ru_maxrss / 1024
    result.setdefault("cpu", usage.ru_utime + usage.ru_stime)  # the whole process's
    print(json.dumps(result), flush=True)


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"child {args[0]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _events(db: Path) -> int:
    """inbound_event rows so far (a reader beside the drain: SQLite's WAL lets it)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db, timeout=60)) as connection:
        try:
            return int(connection.execute("SELECT count(*) FROM inbound_event").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _over_smtp(
    server_args: Sequence[str], port: int, count: int, connections: int, db: Path | None = None
) -> Any:
    """Start a server child, push `count` messages through it; with `db`, wait until each
    has its event (end to end), then stop it; both children's figures, merged."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--child", *server_args, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if "listening" not in line:
            raise SystemExit(f"server did not start: {line}{server.communicate()[1][-3000:]}")
        clients = _child(
            "clients", "--port", str(port), "--count", str(count),
            "--connections", str(connections),
        )  # fmt: skip
        accepted = clients["seconds"]
        if db is not None:
            while _events(db) < count:
                time.sleep(0.05)
            clients["seconds"] = time.monotonic() - clients["started"]
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=600)
    if server.returncode != 0:
        sys.stderr.write(err[-3000:])
        raise SystemExit(f"server {server_args[0]} exited {server.returncode}")
    figures = json.loads(out.strip().splitlines()[-1])
    return {**clients, "accept_seconds": accepted, "client_peak_mb": clients["peak_mb"], **figures}


def _rate(figures: dict[str, Any]) -> float:
    return float(figures["messages"]) / float(figures["seconds"])


def _median(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run of median rate (its other figures with it)."""
    ordered = sorted(runs, key=_rate)
    return ordered[len(ordered) // 2]


def _table(rows: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> None:
    print(
        f"{'variant':54} {'msgs':>6} {'seconds':>8} {'msg/s':>6} {'runs (msg/s)':>17} "
        f"{'CPU ms/msg':>10} {'peak MB':>7}"
    )
    for name, runs in rows:
        r = _median(runs)
        cpu = (float(r["cpu"]) + float(r.get("child_cpu", 0))) / float(r["messages"]) * 1000
        each = ",".join(f"{_rate(one):.0f}" for one in runs)
        print(
            f"{name:54} {r['messages']:>6.0f} {r['seconds']:>8.2f} {_rate(r):>6.0f} "
            f"{each:>17} {cpu:>10.2f} {r['peak_mb']:>7.0f}"
        )


def _verdicts(
    smtp: dict[tuple[int, int], list[Any]], ceiling: dict[int, list[Any]], judged: int
) -> None:
    sizes = sorted({size for size, _ in smtp})
    checks: list[tuple[str, bool]] = []
    for connections in sorted(ceiling):
        ours = _rate(_median(smtp[(sizes[-1], connections)]))
        ratio = ours / _rate(_median(ceiling[connections]))
        mark = " (the goal's figure)" if connections == judged else ""
        checks.append(
            (f"(a) >= 300 messages/s at {sizes[-1]:,} x{connections}: {ours:.0f}", ours >= 300)
        )
        checks.append(
            (f"(a)/(c) >= 0.5 at {sizes[-1]:,} x{connections}{mark}: {ratio:.2f}", ratio >= 0.5)
        )
    if len(sizes) >= 2:
        small = max(
            max(r["peak_mb"], r["child_peak_mb"])
            for k, v in smtp.items()
            if k[0] == sizes[0]
            for r in v
        )
        big = max(
            max(r["peak_mb"], r["child_peak_mb"])
            for k, v in smtp.items()
            if k[0] == sizes[-1]
            for r in v
        )
        checks.append(
            (
                f"memory flat: server peak {small:.0f} MB at {sizes[0]:,}, {big:.0f} MB at "
                f"{sizes[-1]:,} (within 20%)",
                big <= small * 1.2,
            )
        )
    for name, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {name}")


def _run_smtp(work: Path, size: int, connections: int, profile: Path | None) -> dict[str, Any]:
    db = work / f"smtp{size}x{connections}.sqlite3"
    spool = work / f"spool{size}x{connections}"
    _child("setup", "--db", str(db), "--count", str(size))
    server = ["server", "--db", str(db), "--dir", str(spool)]
    if profile is not None:
        server += ["--stats", str(profile / "server.prof")]
    figures = _over_smtp(server, _free_port(), size, connections, db)
    print(
        f"  (a) {size:,} x{connections}: {_rate(figures):.0f} msg/s end to end (last 250 after "
        f"{figures['accept_seconds']:.2f} s, all processed after {figures['seconds']:.2f} s); "
        f"{figures['kinds']} from {figures['groups']:.0f} spool files; CPU ms/msg: event loop "
        f"{figures['cpu'] / size * 1000:.2f}, drain child "
        f"{figures['child_cpu'] / size * 1000:.2f}, "
        f"clients {figures['client_cpu'] / size * 1000:.2f}; peak RSS loop "
        f"{figures['peak_mb']:.0f} MB, drain {figures['child_peak_mb']:.0f} MB",
        flush=True,
    )
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(spool, ignore_errors=True)
    return dict(figures)


def _run_maildir(work: Path, size: int, profile: Path | None) -> dict[str, Any]:
    db = work / f"maildir{size}.sqlite3"
    folder = work / f"maildir{size}"
    _child("setup", "--db", str(db), "--count", str(size))
    _child("fill", "--dir", str(folder), "--count", str(size))
    run = ["maildir", "--db", str(db), "--dir", str(folder)]
    if profile is not None:
        run += ["--stats", str(profile / "maildir.prof")]
    figures = _child(*run)
    print(f"  (b) {size:,}: {_rate(figures):.0f} msg/s, {figures['kinds']}", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="messages per run")
    parser.add_argument("--quick", action="store_true", help="sizes 1000,4000")
    parser.add_argument("--connections", default="8,16", help="SMTP client connections, each")
    parser.add_argument("--judged", type=int, default=16, help="connections the goal is judged at")
    parser.add_argument("--repeat", type=int, default=1, help="runs of (a) and (c) each")
    parser.add_argument("--profile", type=Path, help="folder for cProfile stats of the largest")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    children = {
        "setup": lambda: run_setup(args.db, args.count),
        "fill": lambda: run_maildir_fill(args.dir, args.count),
        "server": lambda: run_server(args.db, args.port, args.dir, args.stats),
        "ceiling": lambda: run_ceiling_server(args.port),
        "clients": lambda: run_clients(args.port, args.count, int(args.connections)),
        "maildir": lambda: run_maildir(args.db, args.dir, args.stats),
    }
    if args.child:
        return children[args.child]()

    sizes = [1_000, 4_000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    counts = sorted(int(c) for c in args.connections.split(","))
    work = Path(tempfile.mkdtemp(prefix="inbound_bench_"))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(
        f"{counts} SMTP client connections, {args.repeat} run(s) each; messages 40% hard, 25% "
        f"soft bounces, 10% complaints, 25% auto-replies; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    smtp: dict[tuple[int, int], list[Any]] = {}
    ceiling: dict[int, list[Any]] = {}
    maildir: dict[int, Any] = {}
    try:
        for size in sizes:
            maildir[size] = _run_maildir(work, size, None)
        for run in range(args.repeat):
            for connections in counts:
                for size in sizes:
                    last = run == args.repeat - 1 and size == sizes[-1]
                    profile = args.profile if last and connections == counts[-1] else None
                    figures = _run_smtp(work, size, connections, profile)
                    smtp.setdefault((size, connections), []).append(figures)
                raw = _over_smtp(["ceiling"], _free_port(), sizes[-1], connections)
                print(f"  (c) {sizes[-1]:,} x{connections}: {_rate(raw):.0f} msg/s", flush=True)
                ceiling.setdefault(connections, []).append(raw)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows: list[tuple[str, Sequence[dict[str, Any]]]] = []
    for size in sizes:
        for connections in counts:
            name = f"(a) digest inbound over SMTP x{connections}, {size:,}"
            rows.append((name, smtp[(size, connections)]))
        rows.append((f"(b) digest inbound process Maildir, {size:,}", [maildir[size]]))
    for connections in counts:
        name = f"(c) raw ceiling: aiosmtpd discarding x{connections}, {sizes[-1]:,}"
        rows.append((name, ceiling[connections]))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    print("(peak MB of (a): the event loop's process; its drain child's is above)\n")
    _table(rows)
    print()
    _verdicts(smtp, ceiling, args.judged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
