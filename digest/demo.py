"""`digest demo`: the whole main job on the embedded defaults, end to end, in seconds.

Creates a fresh SQLite database under `var/demo/` (a folder it made and marked as its own),
the sample topics and a daily list, ingests the bundled Arabic sample feed, subscribes a few
dozen people in several time zones, starts an SMTP server on a free loopback port that
stores what it receives as `.eml` files, sends the digests that are due through real SMTP,
and stops the server.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller

from digest.catalog import topics
from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import make_engine, session_scope, upgrade
from digest.errors import InvalidInput
from digest.ingest import feeds
from digest.ingest import pipeline as ingest
from digest.ingest.pipeline import IngestReport
from digest.samples import feed_path, sample_topics
from digest.send.dispatcher import Dispatcher, DispatchOptions, DispatchReport
from digest.send.smtp import SmtpSender
from subscribers.lists import ListSpec, create_list, get_list
from subscribers.people import Consent, Person, subscribe

FIRST_NAMES = (
    "ريم", "عمر", "سارة", "خالد", "نورة", "يوسف", "هدى", "فيصل", "لينا", "طارق", "مها",
    "سلمان", "دانة", "ماجد", "جود", "بدر", "رنا", "زياد", "أمل", "حسن", "شهد", "وليد",
    "ليلى", "ناصر",
)  # fmt: skip
ENGLISH_NAMES = ("Emma", "James", "Sofia", "Adam")
# The demo's own folder says so: only a folder holding this file is ever cleared, and only of
# the files named below (a user's file left in it stays).
MARKER = ".digest-demo"
_DATABASE = "demo.sqlite3"
_OWN_FILES = re.compile(r"demo\.sqlite3(-wal|-shm|-journal)?|digest-[a-z]{2}\.html")
_OWN_MAIL = re.compile(r"[0-9]{4}-[A-Za-z0-9@._-]+\.eml")
ZONES = (
    "Asia/Riyadh", "Asia/Dubai", "Africa/Cairo", "Asia/Amman", "Africa/Casablanca",
    "Europe/London", "America/New_York", "Asia/Kuala_Lumpur",
)  # fmt: skip


@dataclass
class DemoResult:
    directory: Path
    ingest: IngestReport
    report: DispatchReport
    subscribers: int
    not_due: int
    mailbox: Path
    received: int
    previews: list[Path] = field(default_factory=list)


class _Mailbox:
    """aiosmtpd handler: every accepted message becomes `NNNN-recipient.eml`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            self.count += 1
            safe = "".join(c if c.isalnum() or c in "@.-_" else "_" for c in recipient)
            path = self.directory / f"{self.count:04d}-{safe}.eml"
            path.write_bytes(envelope.original_content or envelope.content)
        return "250 2.0.0 Stored"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_demo(
    settings: Settings, directory: Path = Path("var/demo"), *, people: int = 36
) -> DemoResult:
    """Run the demo in `directory`: a new or empty folder, or a previous demo's (whose files
    are cleared first, so every run starts clean); any other folder is refused."""
    mailbox = prepare_directory(directory)
    port = _free_port()
    settings = settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": f"sqlite:///{(directory / _DATABASE).resolve()}"}
            ),
            "smtp": settings.smtp.model_copy(
                update={
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "",
                    "password": "",
                    "starttls": False,
                    "tls": False,
                    "rate": 0.0,
                }
            ),
            "dkim": settings.dkim.model_copy(
                update={"private_key_path": "", "second_private_key_path": ""}
            ),
        }
    )
    engine = make_engine(
        settings.database.url, busy_timeout_seconds=settings.database.busy_timeout_seconds
    )
    upgrade(engine)
    now = utcnow()
    not_due = _populate(engine, settings, now, people)
    ingested = ingest.ingest(engine, settings.ingest)
    with session_scope(engine) as session:
        daily = get_list(session, "daily")
    handler = _Mailbox(mailbox)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        report = asyncio.run(_send(engine, daily, settings))
    finally:
        controller.stop()
    engine.dispose()
    result = DemoResult(directory, ingested, report, people, not_due, mailbox, handler.count)
    result.previews = _write_previews(mailbox, directory)
    return result


async def _send(engine: Any, daily: Any, settings: Settings) -> DispatchReport:
    async with SmtpSender(settings.smtp) as sender:
        dispatcher = Dispatcher(engine, daily, sender, DispatchOptions.from_settings(settings))
        return await dispatcher.run()


def prepare_directory(directory: Path) -> Path:
    """Make `directory` the demo's and return its mail folder: create it, take it when empty,
    or clear what a previous demo wrote in it. Nothing is deleted that the demo did not write:
    a non-empty folder without the marker is refused, whatever it holds."""
    try:
        if not directory.exists():
            directory.mkdir(parents=True)
        elif not directory.is_dir():
            raise InvalidInput(f"--dir {directory} is a file, not a folder: choose a new folder")
        elif (directory / MARKER).is_file():
            _clear_previous(directory)
        elif any(directory.iterdir()):
            raise InvalidInput(
                f"--dir {directory} is not empty and is not a folder the demo made (it has no "
                f"{MARKER} file); the demo deletes nothing it did not create: choose a new or "
                "empty folder"
            )
        (directory / MARKER).write_text(
            "Made by `digest demo`: running it again deletes only the files it wrote here.\n",
            encoding="utf-8",
        )
        mailbox = directory / "mail"
        mailbox.mkdir(exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"--dir {directory}: {exc.strerror or exc}") from None
    return mailbox


def _clear_previous(directory: Path) -> None:
    """Unlink the files an earlier run wrote (names the demo gives), nothing else."""
    mailbox = directory / "mail"
    if mailbox.is_symlink() or (mailbox.exists() and not mailbox.is_dir()):
        raise InvalidInput(f"--dir {directory}: {mailbox} is not the demo's mail folder")
    for folder, names in ((directory, _OWN_FILES), (mailbox, _OWN_MAIL)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            # A link is removed, never followed: unlink() on it leaves its target alone.
            if names.fullmatch(path.name) and (path.is_symlink() or path.is_file()):
                path.unlink()


def _populate(engine: Any, settings: Settings, now: datetime, people: int) -> int:
    """Topics, the daily list, the sample feed and `people` subscribers; returns how many
    of them are not due yet (their local send hour is still ahead)."""
    rng = random.Random(2026)
    not_due = 0
    with session_scope(engine) as session:
        made = [
            topics.add_topic(
                session,
                slug=t.slug,
                name=t.name,
                name_en=t.name_en,
                keywords=t.keywords,
                aliases=t.aliases,
            )
            for t in sample_topics()
        ]
        ids = [t.id for t in made if t.id is not None]
        daily = create_list(
            session,
            ListSpec(
                slug="daily",
                name="النشرة اليومية",
                topic_ids=ids,
                description="أهم أخبار اليوم في رسالة واحدة صباح كل يوم",
            ),
        )
        feeds.add_feed(session, url=str(feed_path()))
        for number in range(people):
            english = number % 9 == 8  # one reader in nine reads English
            names = ENGLISH_NAMES if english else FIRST_NAMES
            first = names[number % len(names)]
            zone = ZONES[number % len(ZONES)]
            local_hour = now.astimezone(ZoneInfo(zone)).hour
            # Most are due now (their hour has passed today); every fourth is not yet.
            if number % 4 == 3 and local_hour < 23:
                hour = rng.randint(local_hour + 1, 23)
                not_due += 1
            else:
                hour = rng.randint(0, local_hour)
            chosen = rng.sample(ids, rng.randint(1, 3))
            reader = Person(
                f"reader{number + 1:02d}@example.org",
                zone,
                name=first,
                locale="en" if english else "ar",
            )
            subscribe(
                session, reader, daily, topic_ids=chosen, hour=hour, consent=Consent(confirmed=True)
            )
    return not_due


def _write_previews(mailbox: Path, directory: Path) -> list[Path]:
    """The HTML part of the first Arabic and the first English message, to open in a browser."""
    written: list[Path] = []
    seen: set[str] = set()
    for path in sorted(mailbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        language = str(message.get("Content-Language", "ar"))
        body = message.get_body(("html",))
        if language in seen or body is None or not re.fullmatch(r"[a-z]{2}", language):
            continue
        seen.add(language)
        target = directory / f"digest-{language}.html"
        target.write_text(str(body.get_content()), encoding="utf-8")
        written.append(target)
    return written
