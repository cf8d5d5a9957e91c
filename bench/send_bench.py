"""Benchmark `digest send` end to end against Postfix's smtp-sink on loopback, with DKIM off
and on, beside what the wire allows.

Run: python bench/send_bench.py [--sizes 20000,100000] [--quick] [--connections 8]
        [--variants off,rsa,ed25519,both] [--repeat 1] [--naive-sample 400]
        [--ceiling-messages 20000] [--profile PATH [--profile-variant rsa]]

Rows, per size (every row in its own subprocess, so its peak RSS is its own):
(L)  the raw-socket limit: a minimal asyncio SMTP writer of our own (bench/smtp_ceilings.py:
     EHLO once, then per message MAIL/RCPT/DATA in one write, the pre-built CRLF bytes and
     ".", every reply code checked), pre-built digest-sized messages;
(a)  the raw aiosmtplib ceiling: the same messages through aiosmtplib clients, one task per
     connection (no database, no rendering);
(b)  the full pipeline, `Dispatcher.run`: select + plan + compile per segment + personalise +
     MIME + DKIM + outbox claim + SMTP + outcome recording, on a fresh copy of a SQLite file
     set up (untimed) by a separate child, once per DKIM variant: off, RSA-2048, Ed25519,
     and both (Ed25519 + RSA-2048). Keys are made once per bench run; each child checks
     that its signer has the variant's keys and that dkimpy verifies the first message sent;
(c)  a naive baseline: per subscriber Jinja2 + MJML (`compile_digest` every time), an
     `email.message.EmailMessage`, sequential `smtplib.SMTP.send_message` over one
     connection; timed on a sample and extrapolated;
and once, at the end, (a') the pre-built bytes through our SmtpSender pool (info).
(L) and (a) send at the message size of the first (b) variant, over the same connections.
The rows of a size run close in time (the first (b) variant, (L), (a), the other (b)
variants, (c)): on a shared machine, runs side by side see about the same load, so their
ratios mean something. With --repeat N the sizes are run N times, round by round, and the
table gives each row's median msg/s and CPU ms per message (CPU time of the sending process,
which a busy machine disturbs much less than wall time). No progress bar is shown.

Goals (issue 17), printed met or MISSED after the table: DKIM RSA-2048 >= 0.85 x DKIM off;
DKIM off >= 0.80 of (a); DKIM RSA-2048 >= 0.5 of (L); (b) >= 5x (c); peak RSS of (b) under
300 MB; time linear in the subscribers (+10%). --profile runs (b) once more at the largest
size under cProfile (not timed in the table) and prints its top 25 functions by tottime.

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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
sys.path.insert(0, str(ROOT / "bench"))

import smtp_ceilings  # noqa: E402  (the pre-built rows: (L), (a), (a'))

Result = dict[str, float]
VARIANTS = ("off", "rsa", "ed25519", "both")  # the DKIM variants of (b)
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "off": (),
    "rsa": ("rsa-sha256",),
    "ed25519": ("ed25519-sha256",),
    "both": ("ed25519-sha256", "rsa-sha256"),
}
LABELS = {
    "off": "DKIM off",
    "rsa": "DKIM RSA-2048",
    "ed25519": "DKIM Ed25519",
    "both": "DKIM Ed25519 + RSA-2048",
}

SMTP_SINK = "/usr/sbin/smtp-sink"
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
TOPICS = [f"topic{i:02d}" for i in range(20)]
TOPIC_NAMES = [
    "سياسة", "اقتصاد", "رياضة", "تقنية", "ثقافة", "صحة", "علوم", "فن", "سفر", "تعليم",
    "بيئة", "طاقة", "عقارات", "سيارات", "أسواق", "محليات", "عالم", "رأي", "مجتمع", "منوعات",
]  # fmt: skip
ZONES = ["Asia/Riyadh", "Africa/Cairo", "Asia/Dubai", "Europe/London"]  # all past 07:00 at NOW
COMBINATIONS = 60
ARTICLES = 32
SUMMARY = (
    "أعلنت الحكومة حزمة إجراءات جديدة لدعم الشركات الصغيرة والمتوسطة، تشمل تمويلًا بقيمة "
    "2.5 مليار دولار وتسهيلات ضريبية، وقال الوزير إن «الهدف هو خلق 50 ألف وظيفة» خلال عامين، "
    "فيما رحّب اتحاد الغرف التجارية بالخطوة ودعا إلى تسريع صرف الدفعة الأولى."
)


def _settings(
    db: Path | None, port: int, connections: int, dkim: dict[str, str] | None = None
) -> Settings:
    """The bench's settings: smtp-sink without TLS or pacing, DKIM off unless `dkim` holds
    [dkim] overrides."""
    from digest.config import load_settings

    overrides = {
        "smtp.host": "127.0.0.1",
        "smtp.port": str(port),
        "smtp.connections": str(connections),
        "smtp.rate": "0",
        "smtp.starttls": "false",
        "smtp.tls": "false",
        "dkim.private_key_path": "",
        "web.base_url": "https://news.example.org",
        "web.secret_key": "bench-secret-key-bench-secret-key",
    }
    if db is not None:
        overrides["database.url"] = f"sqlite:///{db}"
    overrides.update(dkim or {})
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


def make_keys(directory: Path) -> None:
    """The bench's DKIM keys, made once per run: rsa.pem (2048 bits) and ed25519.pem."""
    from digest.send.dkim import generate_key, write_private_key

    write_private_key(directory / "rsa.pem", generate_key("rsa", 2048))
    write_private_key(directory / "ed25519.pem", generate_key("ed25519"))


def _dkim_overrides(variant: str, keys: Path | None) -> dict[str, str]:
    """The [dkim] settings of a (b) variant; "both" signs with Ed25519 first, then RSA."""
    if variant == "off":
        return {"dkim.private_key_path": ""}
    if keys is None:
        raise SystemExit(f"--dkim {variant} needs --keys")
    first = "ed25519" if variant == "both" else variant
    overrides = {
        "dkim.selector": "bench",
        "dkim.private_key_path": str(keys / f"{first}.pem"),
        "dkim.algorithm": first,
    }
    if variant == "both":
        overrides["dkim.second_selector"] = "bench2"
        overrides["dkim.second_private_key_path"] = str(keys / "rsa.pem")
        overrides["dkim.second_algorithm"] = "rsa"
    return overrides


def _check_signed(message: bytes, signer: Any, variant: str) -> None:
    """One sent message carries one DKIM-Signature per key of the variant, and dkimpy
    verifies each (public keys served from memory instead of DNS)."""
    import dkim

    from digest.send.dkim import dns_record

    keys = () if signer is None else signer.keys
    head = b"\r\n" + message.partition(b"\r\n\r\n")[0]
    count = head.lower().count(b"\r\ndkim-signature:")
    assert count == len(keys), f"{variant}: {count} DKIM-Signature headers, {len(keys)} keys"
    records = {f"{key.selector}._domainkey.{key.domain}": dns_record(key.key) for key in keys}

    def dns(name: bytes, timeout: float = 5) -> bytes:
        return records.get(name.decode("ascii").rstrip("."), "").encode("ascii")

    verifier = dkim.DKIM(message)
    for index in range(count):
        assert verifier.verify(idx=index, dnsfunc=dns), f"{variant}: signature {index} fails"


def run_pipeline(args: argparse.Namespace) -> int:
    """(b) `Dispatcher.run` on the prepared database, DKIM as `args.dkim` asks; only the run
    is timed. The first message sent is checked for its signatures afterwards."""
    from digest.db.engine import make_engine
    from digest.send.dispatcher import Dispatcher, DispatchOptions, RunHooks
    from digest.send.outcome import Envelope, Outcome
    from digest.send.smtp import SmtpSender

    settings = _settings(
        args.db, args.port, args.connections, _dkim_overrides(args.dkim, args.keys)
    )
    engine = make_engine(settings.database.url)
    mailing_list = _mailing_list(engine)

    class CountingSender(SmtpSender):
        """SmtpSender that also adds up message sizes and keeps the first message."""

        size = 0
        first = b""

        async def send(self, envelope: Envelope) -> Outcome:
            self.size += len(envelope.data)
            self.first = self.first or envelope.data
            return await super().send(envelope)

    async def go() -> dict[str, float]:
        async with CountingSender(settings.smtp) as sender:
            options = DispatchOptions.from_settings(settings)
            dispatcher = Dispatcher(
                engine, mailing_list, sender, options, RunHooks(clock=lambda: NOW)
            )
            kinds = () if dispatcher.dkim is None else dispatcher.dkim.keys
            assert tuple(key.algorithm for key in kinds) == ALGORITHMS[args.dkim], kinds
            assert dispatcher.progress is None
            start = time.perf_counter()
            cpu = time.process_time()
            if args.profile is None:
                report = await dispatcher.run(now=NOW)
            else:
                import cProfile

                with cProfile.Profile() as profiler:
                    report = await dispatcher.run(now=NOW)
                profiler.dump_stats(args.profile)
            seconds = time.perf_counter() - start
            cpu = time.process_time() - cpu
        assert report.sent == report.due, report.as_dict()
        _check_signed(sender.first, dispatcher.dkim, args.dkim)
        return {
            "messages": report.sent,
            "seconds": seconds,
            "cpu": cpu,
            "bytes": sender.size / max(report.sent, 1),
            "segments": report.segments,
        }

    _emit(asyncio.run(go()))
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


def _emit(result: Result) -> None:
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def _child(*args: str) -> Result:
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


def _rate(result: Result) -> float:
    return result["messages"] / result["seconds"]


def _cpu_each(result: Result) -> float:
    """CPU seconds of the sending process per message (less sensitive to a busy machine)."""
    return result["cpu"] / result["messages"]


def _median(runs: Sequence[Result]) -> Result:
    """One row of the table from its rounds: the median msg/s and CPU per message (seconds
    and cpu are derived from them), the median size and the highest peak."""
    messages = runs[0]["messages"]
    rate = statistics.median(_rate(run) for run in runs)
    return {
        "messages": messages,
        "seconds": messages / rate,
        "cpu": statistics.median(_cpu_each(run) for run in runs) * messages,
        "bytes": statistics.median(run["bytes"] for run in runs),
        "peak_mb": max(run["peak_mb"] for run in runs),
    }


@dataclass
class Bench:
    """The parent's side: a sink, a work dir (keys, pristine databases), the rows' children."""

    port: int
    connections: int
    work: Path
    variants: Sequence[str]
    most: int  # messages sent by (L) and (a) at most
    sample: int  # subscribers of (c)
    sizes_bytes: dict[int, int] = field(default_factory=dict)

    def setup(self, size: int) -> Result:
        return _child(
            "setup", "--db", str(self.work / f"pristine{size}.sqlite3"), "--count", str(size)
        )

    def pipeline(self, size: int, variant: str, profile: Path | None = None) -> Result:
        """(b) on a fresh copy of the size's database (a send marks its deliveries sent)."""
        db = self.work / f"run{size}.sqlite3"
        for suffix in ("", "-wal"):
            pristine = self.work / f"pristine{size}.sqlite3{suffix}"
            if pristine.exists():
                shutil.copyfile(pristine, f"{db}{suffix}")
        args = ["--db", str(db), "--port", str(self.port), "--connections", str(self.connections)]
        args += ["--dkim", variant, "--keys", str(self.work)]
        args += [] if profile is None else ["--profile", str(profile)]
        try:
            return _child("pipeline", *args)
        finally:
            for leftover in self.work.glob(f"run{size}.sqlite3*"):
                leftover.unlink()

    def ceiling(self, kind: str, size: int) -> Result:
        """(L), (a) or (a') at the size's message size (that of its first (b) variant)."""
        args = ["--port", str(self.port), "--connections", str(self.connections)]
        args += ["--size", str(self.sizes_bytes[size]), "--count", str(min(size, self.most))]
        return _child(kind, *args)

    def round(self, size: int) -> dict[str, Result]:
        """Every row of one size, close in time: the first (b) variant (it gives the message
        size), (L), (a), the other (b) variants, (c)."""
        first, *rest = self.variants
        run = {first: self.pipeline(size, first)}
        self.sizes_bytes.setdefault(size, int(run[first]["bytes"]))
        run["L"] = self.ceiling("limit", size)
        run["a"] = self.ceiling("raw", size)
        for variant in rest:
            run[variant] = self.pipeline(size, variant)
        run["c"] = _child(
            "naive", "--db", str(self.work / "naive.sqlite3"), "--port", str(self.port)
        )
        return run


def _table(bench: Bench, medians: dict[int, dict[str, Result]], pool: Result) -> None:
    x = f"x{bench.connections}"
    rows = []
    for size, run in medians.items():
        rows.append((f"(L) raw-socket limit, own writer {x}, pre-built", run["L"]))
        rows.append((f"(a) raw ceiling, aiosmtplib {x}, pre-built", run["a"]))
        rows += [(f"(b) {size:,} subscribers, {LABELS[v]}", run[v]) for v in bench.variants]
        rows.append((f"(c) naive, sample of {bench.sample} (1 connection)", run["c"]))
    rows.append((f"(a') SmtpSender pool {x}, pre-built (info)", pool))
    print(
        f"{'row':58} {'msgs':>7} {'seconds':>8} {'msg/s':>6} {'CPU ms/msg':>10} "
        f"{'avg KB':>6} {'peak MB':>7}"
    )
    for name, r in rows:
        print(
            f"{name:58} {r['messages']:>7.0f} {r['seconds']:>8.2f} {_rate(r):>6.0f} "
            f"{_cpu_each(r) * 1000:>10.2f} {r['bytes'] / 1000:>6.1f} {r['peak_mb']:>7.0f}"
        )


def _ratios(run: dict[str, Result], pairs: Sequence[tuple[str, str]]) -> dict[str, float]:
    """msg/s of top / bottom for each pair both rows of which ran; printed with the same
    ratio by CPU per message in brackets (what it would be on an idle machine, CPU-bound)."""
    found, shown = {}, []
    for top, bottom in pairs:
        if top in run and bottom in run:
            found[f"{top}/{bottom}"] = ratio = _rate(run[top]) / _rate(run[bottom])
            by_cpu = _cpu_each(run[bottom]) / _cpu_each(run[top])
            shown.append(f"{top}/{bottom} {ratio:.2f} [{by_cpu:.2f}]")
    if shown:
        print("    " + "; ".join(shown))
    return found


def _verdicts(medians: dict[int, dict[str, Result]], main: str) -> None:
    """The issue's goals per size, then memory and time over sizes; `main` is the (b)
    variant the size checks use (DKIM off when it ran)."""
    checks: list[tuple[str, bool]] = []
    for size, run in medians.items():
        print(f"{size:,} subscribers: ratios of msg/s [of CPU per message]")
        dkim = _ratios(run, [("rsa", "off"), ("ed25519", "off"), ("both", "off")])
        ceiling = _ratios(run, [("off", "a"), ("rsa", "a")])
        limit = _ratios(run, [("rsa", "L"), ("off", "L"), ("ed25519", "L"), ("both", "L")])
        naive = _ratios(run, [(main, "c")])
        ours = run[main]
        print(
            f"    (c) extrapolated: {size / _rate(run['c']):.0f} s; ({main}) busy "
            f"{ours['cpu'] / ours['seconds']:.0%} of its wall time"
        )
        for label, ratios, key, goal in (
            ("DKIM RSA-2048 >= 0.85 x DKIM off", dkim, "rsa/off", 0.85),
            ("DKIM off >= 0.80 of the aiosmtplib ceiling (a)", ceiling, "off/a", 0.80),
            ("DKIM RSA-2048 >= 0.5 of the raw-socket limit (L)", limit, "rsa/L", 0.5),
            (f"({main}) >= 5x naive (c)", naive, f"{main}/c", 5),
        ):
            if key in ratios:
                checks.append((f"{label} at {size:,}: {ratios[key]:.2f}", ratios[key] >= goal))
    sizes = sorted(medians)
    largest = sizes[-1]
    peak = max(medians[largest][v]["peak_mb"] for v in VARIANTS if v in medians[largest])
    checks.append((f"peak RSS of (b) < 300 MB at {largest:,}: {peak:.0f} MB", peak < 300))
    if len(sizes) >= 2:
        small, big = medians[sizes[0]][main], medians[largest][main]
        ratio, bound = big["seconds"] / small["seconds"], largest / sizes[0] * 1.1
        print(
            f"({main}) time {largest:,}/{sizes[0]:,}: {ratio:.2f}, CPU time "
            f"{big['cpu'] / small['cpu']:.2f} (linear: {largest / sizes[0]:.1f})"
        )
        checks.append((f"({main}) time ratio <= {bound:.1f} (linear + 10%)", ratio <= bound))
    for name, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {name}")


def _profile_top(path: Path, variant: str) -> None:
    import pstats

    print(f"\ncProfile of ({variant}) at the largest size, saved in {path}; top 25 by tottime:")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000", help="subscriber counts for (b)")
    parser.add_argument("--quick", action="store_true", help="sizes 2000,10000, smaller samples")
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections, (L) (a) (b)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="DKIM variants of (b)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; medians when more than 1")
    parser.add_argument("--naive-sample", type=int, default=400, help="subscribers timed for (c)")
    parser.add_argument("--ceiling-messages", type=int, default=20_000, help="most sent by (L) (a)")
    parser.add_argument("--profile", type=Path, help="cProfile stats of an extra (b) run")
    parser.add_argument("--profile-variant", choices=VARIANTS, default="rsa")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dkim", choices=VARIANTS, default="off", help=argparse.SUPPRESS)
    parser.add_argument("--keys", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    chosen = {v for v in args.variants.split(",") if v}
    args.variants = [v for v in VARIANTS if v in chosen]  # DKIM off first, when it runs
    if not chosen or chosen - set(VARIANTS):
        parser.error(f"--variants: a comma-separated list of {', '.join(VARIANTS)}")
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    return args


def _run_child(args: argparse.Namespace) -> int:
    settings = _settings(args.db, args.port or 25, args.connections)
    if args.child == "setup":
        return run_setup(args.db, args.count)
    if args.child == "pipeline":
        return run_pipeline(args)
    if args.child in ("raw", "pool"):
        _emit(smtp_ceilings.run_ceiling(settings, args.count, args.size, args.child))
    elif args.child == "limit":
        _emit(smtp_ceilings.run_limit(settings, args.count, args.size))
    elif args.child == "naive":
        return run_naive(args.db, args.port)
    else:
        raise SystemExit(f"unknown child {args.child}")
    return 0


def _measure(bench: Bench, sizes: Sequence[int], repeat: int) -> dict[int, dict[str, list[Result]]]:
    """`repeat` rounds over every size; the databases are set up in the first (untimed)."""
    runs: dict[int, dict[str, list[Result]]] = {size: {} for size in sizes}
    for number in range(repeat):
        for size in sizes:
            setup = bench.setup(size)["seconds"] if number == 0 else 0.0
            run = bench.round(size)
            for row, result in run.items():
                runs[size].setdefault(row, []).append(result)
            first = bench.variants[0]
            print(
                f"  round {number + 1}, {size:,}: setup {setup:.1f} s (untimed), dispatch "
                f"({first}) {run[first]['seconds']:.1f} s over {run[first]['segments']:.0f} "
                f"segments; load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    return runs


def main() -> int:
    args = _arguments()
    if args.child:
        return _run_child(args)
    sizes = [2_000, 10_000] if args.quick else sorted(int(s) for s in args.sizes.split(","))
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="send_bench_"))
    bench = Bench(
        port=port,
        connections=args.connections,
        work=work,
        variants=args.variants,
        most=5_000 if args.quick else args.ceiling_messages,
        sample=min(args.naive_sample, 200) if args.quick else args.naive_sample,
    )
    profile = None if args.profile is None else args.profile.resolve()
    sink = start_sink(port)
    print(
        f"smtp-sink on 127.0.0.1:{port}; {args.connections} SMTP connections for (L), (a), "
        f"(b); (b) variants {', '.join(bench.variants)}; {args.repeat} round(s); 20 topics, "
        f"{COMBINATIONS} fixed topic combinations (1-4 topics), {ARTICLES} articles; load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    try:
        make_keys(work)
        _child("setup", "--db", str(work / "naive.sqlite3"), "--count", str(bench.sample))
        runs = _measure(bench, sizes, args.repeat)
        pool = bench.ceiling("pool", sizes[-1])
        if profile is not None:  # an extra run: cProfile would slow the timed ones
            bench.pipeline(sizes[-1], args.profile_variant, profile)
    finally:
        _stop_sink(sink)
        shutil.rmtree(work, ignore_errors=True)
    medians = {size: {row: _median(rs) for row, rs in run.items()} for size, run in runs.items()}
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    if args.repeat > 1:
        print(f"median msg/s and CPU ms/msg of {args.repeat} rounds; peak MB the highest")
    print()
    _table(bench, medians, pool)
    print()
    _verdicts(medians, "off" if "off" in bench.variants else bench.variants[0])
    if profile is not None:
        _profile_top(profile, args.profile_variant)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
