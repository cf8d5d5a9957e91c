"""Benchmark `digest send` end to end against Postfix's smtp-sink on loopback.

Run: python bench/send_bench.py [--sizes 20000,100000] [--quick] [--connections 4]
                                [--naive-sample 400] [--ceiling-messages 20000]

Prints, side by side:
(a)  raw ceiling: pre-built digest-sized messages sent with raw aiosmtplib clients, one
     task per connection (MAIL/RCPT/DATA each, no database, no rendering);
(a') the same pre-built bytes through our SmtpSender pool (pacer, reconnects): the transport
     the pipeline really uses;
(b)  the full pipeline, `Dispatcher.run`: select + plan + compile per segment + personalise +
     MIME + outbox claim + SMTP + one commit per outcome, on a fresh SQLite file;
(c)  a naive baseline: per subscriber Jinja2 + MJML (`compile_digest` every time), an
     `email.message.EmailMessage`, sequential `smtplib.SMTP.send_message` over one
     connection; timed on a sample and extrapolated.
Every variant runs in its own subprocess, so its peak RSS (ru_maxrss) is its own; the
world of (b) is built by a separate setup subprocess, so the timed child holds only the
dispatch. (a) and (c) run right after each size of (b), with (a) at (b)'s average message
size, and the ratios compare these pairs. Besides wall-clock messages/s, the table gives the
CPU time of the sending process per message, which a busy machine disturbs much less.
DKIM is off; no progress bar is shown.

The list: 20 topics; subscribers pick from a fixed set of 60 topic combinations (1-4 topics
each, in list order, a skewed popularity) in 4 time zones, 10% read English; 32 articles
ingested in the last day over the 20 topics (1-2 topics each).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.config import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMTP_SINK = "/usr/sbin/smtp-sink"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
TOPICS = [f"topic{i:02d}" for i in range(20)]
TOPIC_NAMES = [
    "سياسة",
    "اقتصاد",
    "رياضة",
    "تقنية",
    "ثقافة",
    "صحة",
    "علوم",
    "فن",
    "سفر",
    "تعليم",
    "بيئة",
    "طاقة",
    "عقارات",
    "سيارات",
    "أسواق",
    "محليات",
    "عالم",
    "رأي",
    "مجتمع",
    "منوعات",
]
ZONES = ["Asia/Riyadh", "Africa/Cairo", "Asia/Dubai", "Europe/London"]  # all past 07:00 at NOW
COMBINATIONS = 60
ARTICLES = 32
SUMMARY = (
    "أعلنت الحكومة حزمة إجراءات جديدة لدعم الشركات الصغيرة والمتوسطة، تشمل تمويلًا بقيمة "
    "2.5 مليار دولار وتسهيلات ضريبية، وقال الوزير إن «الهدف هو خلق 50 ألف وظيفة» خلال عامين، "
    "فيما رحّب اتحاد الغرف التجارية بالخطوة ودعا إلى تسريع صرف الدفعة الأولى."
)


def _settings(db: Path | None, port: int, connections: int) -> Settings:
    from digest.config import load_settings

    overrides = {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(port),
        "smtp.connections": str(connections),
        "smtp.rate": "0",
        "smtp.starttls": "false",
        "smtp.tls": "false",
        "dkim.private_key_path": "",  # DKIM off
        "web.base_url": "https://news.example.org",
        "web.secret_key": "bench-secret-key-bench-secret-key",
    }
    if db is not None:
        overrides["database.url"] = f"sqlite:///{db}"
    return load_settings(ROOT / "settings.toml", overrides)


def _combinations() -> list[tuple[str, ...]]:
    """A fixed set of topic choices, each in list order (as a sign-up form sends them)."""
    rng = random.Random(11)
    found: list[tuple[str, ...]] = []
    while len(found) < COMBINATIONS:
        picked = tuple(sorted(rng.sample(TOPICS, rng.randint(1, 4))))
        if picked not in found:
            found.append(picked)
    return found


def _people(path: Path, count: int) -> None:
    rng = random.Random(7)
    combos = _combinations()
    weights = [1 / (rank + 1) for rank in range(len(combos))]  # a few popular choices
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "topics", "timezone", "hour", "locale"])
        for i in range(count):
            writer.writerow(
                [
                    f"reader{i}@example{i % 97}.org",
                    f"قارئ رقم {i}" if i % 3 else "",
                    "|".join(rng.choices(combos, weights)[0]),
                    ZONES[i % len(ZONES)],
                    7,
                    "en" if i % 10 == 9 else "ar",
                ]
            )


def add_list_and_articles(session: Any) -> tuple[Any, list[int]]:
    """The benchmark's topics, its daily list offering them all, and its articles (each in
    one or two topics); returns the list and the topic ids. Shared with scale_bench.py."""
    from digest.catalog.topics import add_topic
    from digest.db.models import Article, ArticleTopic
    from subscribers.lists import ListSpec, create_list

    rng = random.Random(3)
    ids = [
        add_topic(session, slug=slug, name=name, name_en=slug.title()).id or 0
        for slug, name in zip(TOPICS, TOPIC_NAMES, strict=True)
    ]
    mailing_list = create_list(
        session, ListSpec(slug="daily", name="النشرة اليومية", hour=7, topic_ids=ids)
    )
    for number in range(ARTICLES):
        ingested = NOW - timedelta(hours=20) + timedelta(minutes=35 * number)
        article = Article(
            guid=f"urn:bench:{number}",
            url=f"https://news.example.org/2026/11/story-{number}",
            title=f"عنوان الخبر رقم {number}: ارتفاع مؤشر السوق بنسبة {rng.randint(1, 9)}.5%",
            summary=SUMMARY,
            body_html="<p>" + "نص الخبر " * rng.randint(300, 1500) + "</p>",
            image_url=f"https://img.example.org/2026/11/{number}.jpg",
            published_at=ingested - timedelta(minutes=5),
            ingested_at=ingested,
        )
        session.add(article)
        session.flush()
        topics = {number % len(ids)}
        if rng.random() < 0.5:
            topics.add(rng.randrange(len(ids)))
        for index in topics:
            session.add(
                ArticleTopic(article_id=article.id or 0, topic_id=ids[index], reason="feed")
            )
    return mailing_list, ids


def run_setup(db: Path, subscribers: int) -> int:
    """Schema, topics, list, articles of the last day, and `subscribers` imported (untimed)."""
    from sqlmodel import Session

    from digest.db.engine import make_engine, upgrade
    from subscribers.imports import ImportOptions, import_csv

    start = time.perf_counter()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with Session(engine) as session:
        mailing_list, ids = add_list_and_articles(session)
        session.commit()
        session.refresh(mailing_list)
    people = db.with_suffix(".csv")
    _people(people, subscribers)
    report = import_csv(
        engine,
        people,
        mailing_list,
        dict(zip(TOPICS, ids, strict=True)),
        ImportOptions(default_timezone="Asia/Riyadh"),
    )
    people.unlink()
    engine.dispose()
    assert report.created == subscribers, report.as_dict()
    _emit({"seconds": time.perf_counter() - start})
    return 0


def _mailing_list(engine: Any) -> Any:
    from sqlmodel import Session, select

    from subscribers.models import MailingList

    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(MailingList).where(MailingList.slug == "daily")).one()


def run_pipeline(db: Path, port: int, connections: int, profile: Path | None) -> int:
    """(b) `Dispatcher.run` on the prepared database; only the run is timed."""
    from digest.db.engine import make_engine
    from digest.send.dispatcher import Dispatcher, DispatchOptions, RunHooks
    from digest.send.outcome import Envelope, Outcome
    from digest.send.smtp import SmtpSender

    settings = _settings(db, port, connections)
    engine = make_engine(settings.database.url)
    mailing_list = _mailing_list(engine)

    class CountingSender(SmtpSender):
        """SmtpSender that also adds up message sizes (a few ns per message)."""

        size = 0

        async def send(self, envelope: Envelope) -> Outcome:
            self.size += len(envelope.data)
            return await super().send(envelope)

    async def go() -> dict[str, float]:
        async with CountingSender(settings.smtp) as sender:
            options = DispatchOptions.from_settings(settings)
            dispatcher = Dispatcher(
                engine, mailing_list, sender, options, RunHooks(clock=lambda: NOW)
            )
            assert dispatcher.dkim is None and dispatcher.progress is None
            start = time.perf_counter()
            cpu = time.process_time()
            if profile is None:
                report = await dispatcher.run(now=NOW)
            else:
                import cProfile

                with cProfile.Profile() as profiler:
                    report = await dispatcher.run(now=NOW)
                profiler.dump_stats(profile)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
        assert report.sent == report.due, report.as_dict()
        return {
            "messages": report.sent,
            "seconds": seconds,
            "cpu": cpu,
            "bytes": sender.size / max(report.sent, 1),
            "segments": report.segments,
        }

    _emit(asyncio.run(go()))
    return 0


def _prebuilt(size: int, count: int) -> list[tuple[str, bytes]]:
    """`count` distinct messages of ~`size` bytes built by our MIME code (same structure)."""
    from digest.send.mime import MessageParts, MessageTemplate, SharedHeaders

    settings = _settings(None, 25, 1)
    shared = SharedHeaders(list_name="النشرة اليومية", list_slug="daily", subject="نشرتك اليومية")
    template = MessageTemplate(settings.sender, shared)
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


def run_ceiling(port: int, connections: int, count: int, size: int, via: str) -> int:
    """(a) raw aiosmtplib clients, or (a') our SmtpSender pool, blasting pre-built bytes."""
    import aiosmtplib

    from digest.send.outcome import Envelope
    from digest.send.smtp import SmtpSender

    messages = _prebuilt(size, 64)
    sender_address = "digest@news.example.org"

    async def raw() -> tuple[int, float, float]:
        clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(connections)]
        await asyncio.gather(*(client.connect() for client in clients))
        numbers = iter(range(count))  # shared: each task takes the next message

        async def worker(client: aiosmtplib.SMTP) -> int:
            sent = 0
            for number in numbers:
                rcpt, data = messages[number % len(messages)]
                refused, _ = await client.sendmail(sender_address, [rcpt], data)
                sent += not refused
            return sent

        start, cpu = time.perf_counter(), time.process_time()
        sent = sum(await asyncio.gather(*(worker(client) for client in clients)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        await asyncio.gather(*(client.quit() for client in clients))
        return sent, seconds, cpu

    async def pooled() -> tuple[int, float, float]:
        settings = _settings(None, port, connections)
        async with SmtpSender(settings.smtp) as sender:
            numbers = iter(range(count))

            async def worker() -> int:
                sent = 0
                for number in numbers:
                    rcpt, data = messages[number % len(messages)]
                    outcome = await sender.send(Envelope(sender_address, rcpt, data))
                    sent += outcome.status == "sent"
                return sent

            start, cpu = time.perf_counter(), time.process_time()
            sent = sum(await asyncio.gather(*(worker() for _ in range(connections))))
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return sent, seconds, cpu

    sent, seconds, cpu = asyncio.run(raw() if via == "raw" else pooled())
    assert sent == count, f"{count - sent} messages refused"
    average = sum(len(data) for _, data in messages) / len(messages)
    _emit({"messages": sent, "seconds": seconds, "cpu": cpu, "bytes": average})
    return 0


def run_naive(db: Path, port: int) -> int:
    """(c) per subscriber: compile (Jinja2 + MJML) + personalise + EmailMessage + smtplib."""
    from digest.db.engine import make_engine
    from digest.render.renderer import Recipient, Renderer, RenderOptions
    from digest.selection.due import PlanRequest, select_due
    from digest.tracking.tokens import Signer, tokens_for

    settings = _settings(db, port, 1)
    engine = make_engine(settings.database.url)
    mailing_list = _mailing_list(engine)
    renderer = Renderer(RenderOptions.from_settings(settings))
    signer = Signer(settings.web.secret_key)
    sender = settings.sender
    with engine.connect() as connection:
        selection = select_due(
            connection,
            mailing_list,
            PlanRequest(now=NOW, max_articles=settings.digest.max_articles),
        )
    work = [
        (replace(planned.segment, tracking=True), due)
        for planned in selection.segments
        for due in planned.recipients
    ]
    kept: list[EmailMessage] = []
    smtp = smtplib.SMTP("127.0.0.1", port)
    start, cpu = time.perf_counter(), time.process_time()
    for number, (segment, due) in enumerate(work):
        tokens = tokens_for(
            signer,
            subscriber_id=due.subscriber_id,
            list_id=mailing_list.id or 0,
            delivery_id=number + 1,
        )
        rendered = renderer.compile_digest(segment).personalise(
            Recipient(
                name=due.name,
                view_token=tokens.view,
                unsubscribe_token=tokens.unsubscribe,
                preferences_token=tokens.preferences,
                open_token=tokens.open,
                click_tokens=tokens.click,
            )
        )
        message = EmailMessage()
        message["From"] = Address(sender.from_name, addr_spec=sender.from_address)
        message["To"] = Address(due.name, addr_spec=due.email)
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=sender.list_id_domain)
        message["List-Id"] = f"<daily.{sender.list_id_domain}>"
        message["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        smtp.send_message(message)
        if number % 25 == 0:
            kept.append(message)  # sized after the timing
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    smtp.quit()
    size = sum(len(message.as_bytes()) for message in kept) / max(len(kept), 1)
    _emit({"messages": len(work), "seconds": seconds, "cpu": cpu, "bytes": size})
    return 0


def _emit(result: dict[str, float]) -> None:
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _child(*args: str) -> dict[str, float]:
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


def start_sink(port: int, dump: Path | None = None) -> subprocess.Popen[bytes]:
    """Postfix's smtp-sink on loopback, once it listens; with `dump`, every transaction (its
    X-Rcpt-Args line included) is appended to that file. Shared with scale_bench.py."""
    if not Path(SMTP_SINK).exists():
        raise SystemExit(f"{SMTP_SINK} not found: install Postfix (it ships smtp-sink)")
    dumping = ["-D", str(dump)] if dump is not None else []
    sink = subprocess.Popen(
        [SMTP_SINK, "-u", "nobody", *dumping, "-m", "256", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return sink
        except OSError:
            if sink.poll() is not None:
                error = sink.stderr.read().decode() if sink.stderr else ""
                raise SystemExit(f"smtp-sink exited: {error}") from None
            time.sleep(0.05)
    sink.terminate()
    raise SystemExit("smtp-sink did not start listening within 10 s")


def _stop_sink(sink: subprocess.Popen[bytes]) -> None:
    sink.terminate()
    try:
        sink.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sink.kill()
        sink.wait()


def _rate(result: dict[str, float]) -> float:
    return result["messages"] / result["seconds"]


def _cpu_each(result: dict[str, float]) -> float:
    """CPU seconds of the sending process per message (less sensitive to a busy machine)."""
    return result["cpu"] / result["messages"]


def _table(rows: Sequence[tuple[str, dict[str, float]]]) -> None:
    print(
        f"{'variant':54} {'msgs':>7} {'seconds':>8} {'msg/s':>6} {'CPU ms/msg':>10} "
        f"{'avg KB':>6} {'peak MB':>7}"
    )
    for name, r in rows:
        print(
            f"{name:54} {r['messages']:>7.0f} {r['seconds']:>8.2f} {_rate(r):>6.0f} "
            f"{_cpu_each(r) * 1000:>10.2f} {r['bytes'] / 1000:>6.1f} {r['peak_mb']:>7.0f}"
        )


def _verdicts(rounds: dict[int, dict[str, dict[str, float]]]) -> None:
    checks: list[tuple[str, bool]] = []
    for size, run in rounds.items():
        ours, raw, naive = run["b"], run["a"], run["c"]
        of_ceiling = _rate(ours) / _rate(raw)
        over_naive = _rate(ours) / _rate(naive)
        print(
            f"{size:>7,}: b/a {of_ceiling:.0%} (by CPU per message "
            f"{_cpu_each(raw) / _cpu_each(ours):.0%}), b/c {over_naive:.1f}x "
            f"(by CPU {_cpu_each(naive) / _cpu_each(ours):.1f}x); "
            f"(c) extrapolated: {size / _rate(naive):.0f} s; peak {ours['peak_mb']:.0f} MB; "
            f"(b) busy {ours['cpu'] / ours['seconds']:.0%} of its wall time"
        )
        checks.append((f"b >= 60% of a at {size:,}", of_ceiling >= 0.6))
        checks.append((f"b >= 5x c at {size:,}", over_naive >= 5))
    sizes = sorted(rounds)
    largest = sizes[-1]
    checks.append((f"peak RSS < 300 MB at {largest:,}", rounds[largest]["b"]["peak_mb"] < 300))
    if len(sizes) >= 2:
        small, big = rounds[sizes[0]]["b"], rounds[largest]["b"]
        ratio = big["seconds"] / small["seconds"]
        limit = largest / sizes[0] * 1.1
        print(
            f"time {largest:,}/{sizes[0]:,}: {ratio:.2f}, CPU time "
            f"{big['cpu'] / small['cpu']:.2f} (linear: {largest / sizes[0]:.1f})"
        )
        checks.append((f"time ratio <= {limit:.1f} (linear + 10%)", ratio <= limit))
    for name, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="subscriber counts for (b)")
    parser.add_argument("--quick", action="store_true", help="sizes 2000,10000, smaller samples")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections, (a) and (b)")
    parser.add_argument("--naive-sample", type=int, default=400, help="subscribers timed for (c)")
    parser.add_argument("--ceiling-messages", type=int, default=20_000, help="most sent by (a)")
    parser.add_argument("--profile", type=Path, help="cProfile stats of the largest (b) run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "setup":
        return run_setup(args.db, args.count)
    if args.child == "pipeline":
        return run_pipeline(args.db, args.port, args.connections, args.profile)
    if args.child in ("raw", "pool"):
        return run_ceiling(args.port, args.connections, args.count, args.size, args.child)
    if args.child == "naive":
        return run_naive(args.db, args.port)

    sizes = [2_000, 10_000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    most = 5_000 if args.quick else args.ceiling_messages
    sample = min(args.naive_sample, 200) if args.quick else args.naive_sample
    connections = str(args.connections)
    port = _free_port()
    sink = start_sink(port)
    work = Path(tempfile.mkdtemp(prefix="send_bench_"))
    rounds: dict[int, dict[str, dict[str, float]]] = {}
    print(
        f"smtp-sink on 127.0.0.1:{port}; {connections} SMTP connections for (a) and (b); "
        f"20 topics, {COMBINATIONS} fixed topic combinations (1-4 topics), {ARTICLES} articles; "
        f"DKIM off; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        naive_db = work / "naive.sqlite3"
        _child("setup", "--db", str(naive_db), "--count", str(sample))
        for size in sizes:
            # (a) and (c) run right after each (b): on a shared machine, paired runs see
            # about the same load, so their ratios mean something.
            db = work / f"pipeline{size}.sqlite3"
            setup = _child("setup", "--db", str(db), "--count", str(size))
            extra = []
            if args.profile is not None and size == sizes[-1]:
                extra = ["--profile", str(args.profile)]
            pipeline = ["--db", str(db), "--port", str(port), "--connections", connections]
            ours = _child("pipeline", *pipeline, *extra)
            for leftover in work.glob(f"pipeline{size}.sqlite3*"):
                leftover.unlink()
            ceiling = ["--port", str(port), "--connections", connections]
            ceiling += ["--size", str(int(ours["bytes"])), "--count", str(min(size, most))]
            raw = _child("raw", *ceiling)
            naive = _child("naive", "--db", str(naive_db), "--port", str(port))
            rounds[size] = {"a": raw, "b": ours, "c": naive}
            print(
                f"  {size:,}: setup {setup['seconds']:.1f} s (untimed), dispatch "
                f"{ours['seconds']:.1f} s over {ours['segments']:.0f} segments; "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        pool = _child("pool", *ceiling)
    finally:
        _stop_sink(sink)
        shutil.rmtree(work, ignore_errors=True)

    rows: list[tuple[str, dict[str, float]]] = []
    for size, run in rounds.items():
        rows.append((f"(a) raw ceiling, aiosmtplib x{connections}, pre-built", run["a"]))
        rows.append((f"(b) full pipeline, {size:,} subscribers", run["b"]))
        rows.append((f"(c) naive, sample of {sample} (1 connection)", run["c"]))
    rows.append((f"(a') SmtpSender pool x{connections}, pre-built (info)", pool))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}\n")
    _table(rows)
    print()
    _verdicts(rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
