"""Benchmark scaling out on PostgreSQL: `digest worker` throughput, and planning at 1M.

Run: python bench/scale_bench.py [--quick] [--messages 20000] [--workers 1,2,4]
                                 [--plan-sizes 100000,1000000] [--naive-sample 5000]
                                 [--concurrency 4] [--skip-send] [--skip-plan]

Needs Debian's PostgreSQL (a throwaway server on loopback, tests/helpers/pg.py; as root it runs
through runuser) and Postfix's `smtp-sink` (`apt-get install postgresql postfix`).

Prints, side by side:
1. Sending `--messages` queued digests (planned beforehand by `digest send` with
   `[workers] enabled`): (a) the raw SMTP ceiling, pre-built messages through raw
   aiosmtplib clients (as send_bench.py); (b) the single-process `digest send` on the same
   PostgreSQL without workers; (w1, w2, w4) 1, 2 and 4 real `digest worker` subprocesses.
   For each: messages/s (over the first to the last `sent_at`, and over the whole wall
   clock from process start to the last outcome recorded), CPU ms per message of our
   processes (the senders; PostgreSQL and smtp-sink apart), and the check that smtp-sink
   received every address exactly once (from its dump file, `X-Rcpt-Args` lines) and that
   every delivery row is `sent` after exactly one claim. Then the machine's core count
   and how far workers scale: they should add throughput up to the cores, then flatten.
2. Planning (what `digest send` does when workers send: select who is due + write their
   queued delivery rows) for each of `--plan-sizes` subscriptions on a fresh copy of one
   database: (p) our planning (`Dispatcher.run` in plan-only mode), in a subprocess of its
   own whose ru_maxrss is its peak memory; (n) a naive ORM baseline, `session.add` of one
   `Delivery` per row, timed on `--naive-sample` rows and extrapolated; (r) the raw ceiling:
   the same rows COPY'd by psycopg straight into the table. Checks: 1,000,000 planned in
   under 60 s, and memory flat (peak RSS at the largest size within 1.25x of the smallest).

The list: 20 topics, subscribers pick from 60 fixed topic combinations in 4 time zones
(all past their 07:00 at the benchmark's moment), 10% read English; 32 articles. Worlds
are built once per size with COPY (untimed) and copied per run (CREATE DATABASE TEMPLATE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.config import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import send_bench  # noqa: E402  (the same world: topics, combinations, zones, articles)

DIGEST = Path(sys.executable).with_name("digest")
SEND_BENCH = ROOT / "bench" / "send_bench.py"
NOW = send_bench.NOW  # 12:00 UTC: every zone of the world is past its 07:00
SECRET = "bench-secret-key-bench-secret-key"
PEAK_MARGIN = 1.25  # "memory flat": the largest size's peak within 1.25x of the smallest's
PLAN_TARGET = 60.0  # seconds for 1,000,000 deliveries


# --- the world ---------------------------------------------------------------------------


def _catalogue(url: str) -> int:
    """Schema, 20 topics, the list and 32 articles of the last day; returns the list id."""
    from sqlmodel import Session

    from digest.db.engine import make_engine, upgrade

    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        mailing_list, _ids = send_bench.add_list_and_articles(session)
        session.commit()
        list_id = mailing_list.id or 0
    engine.dispose()
    return list_id


def _email(number: int) -> str:
    return f"reader{number}@example{number % 97}.org"


def build_world(server: Any, name: str, count: int) -> float:
    """A database `name` holding the world with `count` active subscriptions (COPY, untimed)."""
    import psycopg

    start = time.perf_counter()
    _admin(server, f"CREATE DATABASE {name}")
    list_id = _catalogue(server.url(name))
    rng = random.Random(7)
    combos = send_bench._combinations()
    weights = [1 / (rank + 1) for rank in range(len(combos))]  # a few popular choices
    with psycopg.connect(server.dsn(name)) as connection:
        slugs = connection.execute("SELECT slug, id FROM topic").fetchall()
        topic_ids: dict[str, int] = dict(slugs)
        joined = (NOW - timedelta(days=30)).isoformat()
        chunk = 20_000
        for first in range(0, count, chunk):
            people, subs, picks = [], [], []
            for i in range(first, min(first + chunk, count)):
                number = i + 1
                name_text = f"قارئ رقم {i}" if i % 3 else ""
                locale = "en" if i % 10 == 9 else "ar"
                zone = send_bench.ZONES[i % len(send_bench.ZONES)]
                email = _email(i)
                people.append(
                    f"{number}\t{email}\t{email.lower()}\t{name_text}\t{locale}\t{zone}\t{joined}\n"
                )
                subs.append(
                    f"{number}\t{number}\t{list_id}\tactive\t\\N\t{joined}\t{joined}\timport\t1\n"
                )
                for position, slug in enumerate(rng.choices(combos, weights)[0]):
                    picks.append(f"{number}\t{topic_ids[slug]}\t{position}\n")
            for table, columns, lines in (
                ("subscriber", "id, email, email_key, name, locale, timezone, created_at", people),
                (
                    "subscription",
                    "id, subscriber_id, list_id, status, send_hour, requested_at, "
                    "confirmed_at, source, consent_version",
                    subs,
                ),
                ("subscription_topic", "subscription_id, topic_id, position", picks),
            ):
                with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    copy.write("".join(lines))
        for table in ("subscriber", "subscription"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {max(count, 1)})"
            )
        connection.commit()
    with psycopg.connect(server.dsn(name), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - start


def _admin(server: Any, statement: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as connection:
        connection.execute(statement)


@contextmanager
def _copy_of(server: Any, template: str, name: str) -> Iterator[str]:
    """A fresh copy of the world `template`, dropped afterwards; yields its URL."""
    _admin(server, f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield server.url(name)
    finally:
        _admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _settings(url: str, **extra: str) -> Settings:
    from digest.config import load_settings

    overrides = {
        "database.url": url,
        "smtp.rate": "0",
        "dkim.private_key_path": "",
        "web.base_url": "https://news.example.org",
        "web.secret_key": SECRET,
        **extra,
    }
    return load_settings(ROOT / "settings.toml", overrides)


def _emit(result: dict[str, float]) -> None:
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


# --- planning children -------------------------------------------------------------------


def _mailing_list(engine: Any) -> Any:
    from sqlmodel import Session, select

    from subscribers.models import MailingList

    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(MailingList).where(MailingList.slug == "daily")).one()


def run_plan(url: str) -> int:
    """(p) what `digest send` does when workers send: `Dispatcher.run`, plan-only."""
    from digest.db.engine import make_engine
    from digest.send.dispatcher import Dispatcher, DispatchOptions
    from digest.send.files import FileSender

    settings = _settings(url, **{"workers.enabled": "true"})
    engine = make_engine(url)
    mailing_list = _mailing_list(engine)
    options = DispatchOptions.from_settings(settings)
    assert options.plan_only
    dispatcher = Dispatcher(engine, mailing_list, FileSender(Path("/nonexistent")), options)
    start, cpu = time.perf_counter(), time.process_time()
    report = asyncio.run(dispatcher.run(now=NOW))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = _count(engine, "SELECT COUNT(*) FROM delivery")
    _emit(
        {
            "rows": rows,
            "seconds": seconds,
            "cpu": cpu,
            "queued": report.queued,
            "skipped": report.skipped_empty,
            "segments": report.segments,
        }
    )
    return 0


def _count(engine: Any, query: str) -> int:
    from sqlalchemy import text

    with engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


def run_naive_plan(url: str, sample: int) -> int:
    """(n) per subscription: ORM objects read, due-ness in Python, `session.add(Delivery)`."""
    from sqlmodel import Session, select

    from digest.db.engine import make_engine
    from digest.db.models import Delivery, Edition, EditionStatus
    from digest.selection.window import local_due_date
    from subscribers.models import Subscriber, Subscription

    engine = make_engine(url)
    mailing_list = _mailing_list(engine)
    start, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        edition = Edition(
            list_id=mailing_list.id or 0, local_date=NOW.date(), status=EditionStatus.SENDING
        )
        session.add(edition)
        session.flush()
        query = (
            select(Subscription, Subscriber)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)  # type: ignore[arg-type]
            .where(Subscription.list_id == mailing_list.id)
            .order_by(Subscription.id)  # type: ignore[arg-type]
            .limit(sample)
        )
        rows = 0
        for subscription, subscriber in session.exec(query):
            hour = subscription.send_hour or mailing_list.default_hour
            local_day = local_due_date(NOW, subscriber.timezone, hour)
            if local_day is None:
                continue
            session.add(
                Delivery(
                    edition_id=edition.id or 0,
                    list_id=mailing_list.id or 0,
                    subscriber_id=subscriber.id or 0,
                    window_start=NOW - timedelta(days=1),
                    window_end=NOW,
                    locale=subscriber.locale,
                    topic_ids=[1, 2],
                    article_ids=[3, 4, 5],
                )
            )
            rows += 1
        session.commit()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _emit({"rows": rows, "seconds": seconds, "cpu": cpu})
    return 0


def run_copy(url: str) -> int:
    """(r) the raw ceiling: the subscription ids streamed out, the delivery rows COPY'd in."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = f"host={parsed.host} port={parsed.port} user={parsed.username} dbname={parsed.database}"
    start, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(dsn) as connection:
        list_id = connection.execute("SELECT id FROM mailing_list").fetchone()
        assert list_id is not None
        edition = connection.execute(
            "INSERT INTO edition (list_id, local_date, status, created_at) "
            "VALUES (%s, %s, 'sending', %s) RETURNING id",
            (list_id[0], NOW.date(), NOW),
        ).fetchone()
        assert edition is not None
        connection.commit()  # the writer's connection must see it
        stamp = NOW.isoformat()
        window = (NOW - timedelta(days=1)).isoformat()
        head = f"{edition[0]}\t{list_id[0]}\t"
        tail = f"\tqueued\t0\t{stamp}\t{window}\t{stamp}\tar\t[1,2]\t[3,4,5]\t{stamp}\t{stamp}\t\n"
        reader = connection.cursor(name="ids")
        reader.itersize = 20_000
        reader.execute("SELECT subscriber_id FROM subscription ORDER BY id")
        rows = 0
        with (
            psycopg.connect(dsn) as writer,
            writer.cursor().copy(
                "COPY delivery (edition_id, list_id, subscriber_id, status, attempts, "
                "next_attempt_at, window_start, window_end, locale, topic_ids, article_ids, "
                "created_at, updated_at, smtp_message) FROM STDIN"
            ) as copy,
        ):
            while batch := reader.fetchmany(20_000):
                copy.write("".join(f"{head}{sid}{tail}" for (sid,) in batch))
                rows += len(batch)
        connection.commit()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    _emit({"rows": rows, "seconds": seconds, "cpu": cpu})
    return 0


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"child {args[0]} failed with exit code {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- sending ------------------------------------------------------------------------------


def _env(url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `digest` subprocess: only our settings, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        {
            "DIGEST_DATABASE__URL": url,
            "DIGEST_SMTP__HOST": "127.0.0.1",
            "DIGEST_SMTP__PORT": str(port),
            "DIGEST_SMTP__RATE": "0",
            "DIGEST_SMTP__STARTTLS": "false",
            "DIGEST_SMTP__TLS": "false",
            "DIGEST_DKIM__PRIVATE_KEY_PATH": "",
            "DIGEST_WEB__BASE_URL": "https://news.example.org",
            "DIGEST_WEB__SECRET_KEY": SECRET,
            "DIGEST_WORKERS__POLL_SECONDS": "0.2",
        }
    )
    env.update({f"DIGEST_{k.upper()}": v for k, v in extra.items()})
    return env


def _received(dump: Path) -> Counter[str]:
    """Recipient -> how many messages smtp-sink took for it (its dump's X-Rcpt-Args lines)."""
    if not dump.exists():
        return Counter()
    found = subprocess.run(
        ["grep", "-a", "^X-Rcpt-Args:", str(dump)], capture_output=True, text=True
    ).stdout
    return Counter(line[line.find("<") + 1 : line.rfind(">")] for line in found.splitlines())


def _reap(popen: subprocess.Popen[bytes]) -> float:
    """Wait for `popen`; its CPU seconds (user + system), from wait4."""
    _, status, usage = os.wait4(popen.pid, 0)
    popen.returncode = os.waitstatus_to_exitcode(status)
    if popen.returncode not in (0, -signal.SIGTERM):
        raise SystemExit(f"{popen.args!r} exited with {popen.returncode}")
    return float(usage.ru_utime + usage.ru_stime)


def _deliveries(dsn: str) -> dict[str, float]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'sent'), "
            "COUNT(*) FILTER (WHERE attempts = 1), COUNT(DISTINCT subscriber_id), "
            "COALESCE(EXTRACT(EPOCH FROM MAX(sent_at) - MIN(sent_at)), 0), "
            "COUNT(DISTINCT claimed_by) FROM delivery"
        ).fetchone()
    assert row is not None
    keys = ("rows", "sent", "claimed_once", "subscribers", "span", "workers")
    return {k: float(v) for k, v in zip(keys, row, strict=True)}


def _plan_queue(url: str, port: int, count: int) -> None:
    """`digest send` with `[workers] enabled`: only plans; every delivery is queued."""
    done = subprocess.run(
        [str(DIGEST), "send", "--list", "daily", "--now", NOW.isoformat(), "--json"],
        env=_env(url, port, workers__enabled="true"),
        capture_output=True,
        text=True,
    )
    report = json.loads(done.stdout) if done.returncode == 0 else {}
    if report.get("queued") != count or report.get("sent") != 0:
        raise SystemExit(f"planning the queue failed: {done.stdout}{done.stderr}")


def send_round(
    server: Any, world: str, name: str, port: int, count: int, workers: int, concurrency: int
) -> dict[str, float]:
    """Send the queued world with `workers` `digest worker` processes (0: one `digest send`
    without workers), on a fresh copy of the world and a fresh smtp-sink dump."""
    dump_dir = Path(tempfile.mkdtemp(prefix="scale_sink_", dir="/dev/shm"))
    dump_dir.chmod(0o777)  # smtp-sink writes as nobody
    dump = dump_dir / "dump"
    with _copy_of(server, world, name) as url:
        _plan_queue(url, port, count)
        _analyze(server, name)  # the freshly queued rows: as after an autovacuum
        sink = send_bench.start_sink(port, dump)
        try:
            start = time.perf_counter()
            if workers == 0:
                sender = subprocess.Popen(
                    [str(DIGEST), "send", "--list", "daily", "--now", NOW.isoformat(), "--json"],
                    env=_env(url, port, smtp__connections=str(concurrency)),
                    stdout=subprocess.DEVNULL,
                )
                cpu = _reap(sender)
                seconds = time.perf_counter() - start
            else:
                env = _env(url, port, workers__enabled="true", workers__count=str(workers))
                processes = [
                    subprocess.Popen(
                        [str(DIGEST), "worker", "--concurrency", str(concurrency)],
                        env=env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    for _ in range(workers)
                ]
                seconds = _wait_sent(server.dsn(name), count, start, processes)
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                cpu = sum(_reap(process) for process in processes)
            result = _deliveries(server.dsn(name))
        finally:
            send_bench._stop_sink(sink)
    received = _received(dump)
    size = dump.stat().st_size if dump.exists() else 0
    shutil.rmtree(dump_dir, ignore_errors=True)
    expected = {_email(i) for i in range(count)}
    result.update(
        {
            "messages": result["sent"],
            "seconds": seconds,
            "cpu": cpu,
            "received": float(sum(received.values())),
            "missing": float(len(expected - set(received))),
            "doubled": float(sum(n - 1 for n in received.values() if n > 1)),
            "unexpected": float(len(set(received) - expected)),
            "bytes": size / max(sum(received.values()), 1),
        }
    )
    return result


def _wait_sent(
    dsn: str, count: int, start: float, processes: Sequence[subprocess.Popen[bytes]]
) -> float:
    """Seconds from `start` until every delivery is recorded as sent (polled)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT COUNT(*) FROM delivery WHERE status = 'sent'"
            ).fetchone()
            if row is not None and row[0] >= count:
                return time.perf_counter() - start
            if any(p.poll() is not None for p in processes):
                raise SystemExit("a worker exited before the queue was sent")
            if time.perf_counter() - start > 1800:
                raise SystemExit("workers did not send the queue within 30 minutes")
            time.sleep(0.05)


def ceiling_round(port: int, count: int, size: int, connections: int) -> dict[str, float]:
    """(a) send_bench.py's raw aiosmtplib ceiling against the same kind of sink."""
    dump_dir = Path(tempfile.mkdtemp(prefix="scale_sink_", dir="/dev/shm"))
    dump_dir.chmod(0o777)
    sink = send_bench.start_sink(port, dump_dir / "dump")
    try:
        done = subprocess.run(
            [
                *(sys.executable, str(SEND_BENCH), "--child", "raw", "--port", str(port)),
                *("--connections", str(connections), "--count", str(count), "--size", str(size)),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        send_bench._stop_sink(sink)
    received = _received(dump_dir / "dump")
    shutil.rmtree(dump_dir, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"ceiling failed: {done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result["received"] = float(sum(received.values()))
    return result


# --- planning: orchestration -------------------------------------------------------------


def plan_rounds(server: Any, sizes: Sequence[int], sample: int) -> dict[int, dict[str, Any]]:
    rounds: dict[int, dict[str, Any]] = {}
    for size in sizes:
        world = f"world_{size}"
        built = build_world(server, world, size)
        with _copy_of(server, world, f"plan_{size}") as url:
            ours = _child("plan", "--url", url)
        with _copy_of(server, world, f"naive_{size}") as url:
            naive = _child("naive-plan", "--url", url, "--count", str(min(sample, size)))
        with _copy_of(server, world, f"raw_{size}") as url:
            raw = _child("copy", "--url", url)
        _admin(server, f"DROP DATABASE {world} WITH (FORCE)")
        rounds[size] = {"p": ours, "n": naive, "r": raw}
        print(
            f"  {size:,} subscriptions: world built in {built:.0f} s (untimed); planned "
            f"{ours['rows']:,.0f} rows in {ours['seconds']:.1f} s, peak {ours['peak_mb']:.0f} MB; "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    return rounds


def _analyze(server: Any, name: str) -> None:
    import psycopg

    with psycopg.connect(server.dsn(name), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


# --- report ------------------------------------------------------------------------------


def _send_table(rows: Sequence[tuple[str, dict[str, float]]]) -> None:
    print(
        f"{'variant':44} {'msgs':>6} {'wall s':>7} {'msg/s':>6} {'send s':>7} {'msg/s':>6} "
        f"{'CPU ms/msg':>10}  check"
    )
    for name, r in rows:
        span = r.get("span", 0.0) or r["seconds"]
        if "missing" in r:
            ok = (
                r["missing"] == 0
                and r["doubled"] == 0
                and r["unexpected"] == 0
                and r["sent"] == r["rows"] == r["claimed_once"] == r["subscribers"]
            )
            check = (
                f"{'OK' if ok else 'FAILED'}: sink got {r['received']:,.0f} for "
                f"{r['rows']:,.0f} rows, {r['missing']:.0f} missing, {r['doubled']:.0f} twice; "
                f"{r['sent']:,.0f} sent, {r['claimed_once']:,.0f} claimed once"
            )
        else:
            check = f"sink got {r['received']:,.0f} (pre-built messages, no database)"
        print(
            f"{name:44} {r['messages']:>6.0f} {r['seconds']:>7.2f} "
            f"{r['messages'] / r['seconds']:>6.0f} {span:>7.2f} {r['messages'] / span:>6.0f} "
            f"{r['cpu'] / r['messages'] * 1000:>10.2f}  {check}"
        )


def _send_verdicts(runs: dict[int, dict[str, float]], cores: int) -> list[tuple[str, bool]]:
    def rate(r: dict[str, float]) -> float:
        return r["messages"] / (r.get("span", 0.0) or r["seconds"])

    counts = sorted(runs)
    base = rate(runs[counts[0]])
    parts = [f"{n} worker(s) {rate(runs[n]) / base:.2f}x" for n in counts]
    print(f"throughput over 1 worker (send span): {', '.join(parts)}; {cores} CPU cores")
    checks: list[tuple[str, bool]] = []
    for n, r in runs.items():
        ok = r["missing"] == r["doubled"] == r["unexpected"] == 0 and r["sent"] == r["rows"]
        checks.append((f"{n} worker(s): every address exactly once", ok))
    below = [n for n in counts if n <= cores]
    above = [n for n in counts if n > cores]
    if len(below) >= 2:
        small, big = below[0], below[-1]
        gain = rate(runs[big]) / rate(runs[small])
        checks.append((f"{big} workers add throughput over {small} (up to the cores)", gain > 1.1))
    if below and above:
        at, past = below[-1], above[-1]
        change = rate(runs[past]) / rate(runs[at])
        print(
            f"past the core count: {past} workers give {change:.2f}x of {at} "
            "(flat expected: PostgreSQL, smtp-sink and the workers share the cores)"
        )
    return checks


def _plan_table(rounds: dict[int, dict[str, Any]]) -> None:
    print(f"{'variant':58} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'CPU s':>7} {'peak MB':>7}")
    for size, run in rounds.items():
        ours, naive, raw = run["p"], run["n"], run["r"]
        naive_seconds = naive["seconds"] * size / max(naive["rows"], 1)
        lines = [
            (f"(p) ours, {size:,} subscriptions (Dispatcher, plan-only)", ours, ours["seconds"]),
            (
                f"(n) naive ORM add per row, {naive['rows']:,.0f} timed, extrapolated",
                {**naive, "rows": size, "cpu": naive["cpu"] * size / max(naive["rows"], 1)},
                naive_seconds,
            ),
            ("(r) raw ceiling: COPY of the same rows (psycopg)", raw, raw["seconds"]),
        ]
        for name, r, seconds in lines:
            print(
                f"{name:58} {r['rows']:>9,.0f} {seconds:>8.1f} {r['rows'] / seconds:>8,.0f} "
                f"{r['cpu']:>7.1f} {r['peak_mb']:>7.0f}"
            )


def _plan_verdicts(rounds: dict[int, dict[str, Any]]) -> list[tuple[str, bool]]:
    sizes = sorted(rounds)
    checks = [(f"(p) planned all {s:,}", rounds[s]["p"]["rows"] == s) for s in sizes]
    if 1_000_000 in rounds:
        took = rounds[1_000_000]["p"]["seconds"]
        checks.append((f"1,000,000 planned in < {PLAN_TARGET:.0f} s ({took:.1f} s)", took < 60))
    if len(sizes) >= 2:
        small, big = rounds[sizes[0]]["p"], rounds[sizes[-1]]["p"]
        ratio = big["peak_mb"] / small["peak_mb"]
        print(
            f"peak RSS {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f} "
            f"({big['peak_mb']:.0f} / {small['peak_mb']:.0f} MB); time "
            f"{big['seconds'] / small['seconds']:.1f}x for {sizes[-1] / sizes[0]:.0f}x the rows"
        )
        checks.append((f"memory flat (peak ratio <= {PEAK_MARGIN})", ratio <= PEAK_MARGIN))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="deliveries to send")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    parser.add_argument("--concurrency", type=int, default=4, help="SMTP connections per sender")
    parser.add_argument("--plan-sizes", default="100000,1000000", help="subscriptions planned")
    parser.add_argument("--naive-sample", type=int, default=5000, help="rows timed for (n)")
    parser.add_argument("--quick", action="store_true", help="2,000 messages; plan 10k and 100k")
    parser.add_argument("--skip-send", action="store_true", help="only the planning part")
    parser.add_argument("--skip-plan", action="store_true", help="only the sending part")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "plan":
        return run_plan(args.url)
    if args.child == "naive-plan":
        return run_naive_plan(args.url, args.count)
    if args.child == "copy":
        return run_copy(args.url)

    from tests.helpers import pg

    messages = 2_000 if args.quick else args.messages
    plan_sizes = "10000,100000" if args.quick else args.plan_sizes
    sample = min(args.naive_sample, 1_000) if args.quick else args.naive_sample
    counts = sorted(int(n) for n in args.workers.split(","))
    sizes = sorted(int(s) for s in plan_sizes.split(","))
    cores = os.cpu_count() or 1
    print(
        f"PostgreSQL {pg.binaries()} on loopback (fsync off), smtp-sink dumping to /dev/shm; "
        f"{cores} CPU cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    send: list[tuple[str, dict[str, float]]] = []
    by_workers: dict[int, dict[str, float]] = {}
    plans: dict[int, dict[str, Any]] = {}
    with pg.server() as server:
        if not args.skip_send:
            port = send_bench._free_port()
            built = build_world(server, "world_send", messages)
            print(f"  {messages:,} subscribers for sending, built in {built:.0f} s (untimed)")
            single = send_round(
                server, "world_send", "send_single", port, messages, 0, args.concurrency
            )
            print(f"  (b) digest send: {single['seconds']:.1f} s", flush=True)
            for n in counts:
                by_workers[n] = send_round(
                    server, "world_send", f"send_w{n}", port, messages, n, args.concurrency
                )
                print(
                    f"  {n} worker(s): {by_workers[n]['seconds']:.1f} s; load average "
                    f"{os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            size = int(single["bytes"])
            ceiling = ceiling_round(port, messages, size, args.concurrency)
            send.append((f"(a) raw ceiling, aiosmtplib x{args.concurrency}, pre-built", ceiling))
            send.append((f"(b) digest send, one process, x{args.concurrency}", single))
            send += [
                (f"(w{n}) {n} x digest worker --concurrency {args.concurrency}", by_workers[n])
                for n in counts
            ]
        if not args.skip_plan:
            plans = plan_rounds(server, sizes, sample)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    checks: list[tuple[str, bool]] = []
    if send:
        print(f"\n1. Sending {messages:,} queued digests (PostgreSQL + smtp-sink, one machine)")
        _send_table(send)
        print(
            "   wall: process start to the last outcome recorded; send: first to last sent_at; "
            "CPU: the sending processes only"
        )
        checks += _send_verdicts(by_workers, cores)
    if plans:
        print("\n2. Planning (select who is due + write their queued deliveries), PostgreSQL")
        _plan_table(plans)
        checks += _plan_verdicts(plans)
    print()
    for name, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
