"""The unsubscribe spool: unsubscribes accepted while the database was busy, in append-only
files (one per process, each line fsynced) that the app applies as soon as it can."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from digest.config import Settings
from digest.db.engine import sqlite_file
from digest.inbound.spool import sync_dir

log = logging.getLogger(__name__)
WAITING = ".jsonl"  # still written to by its process
TAKEN = ".taken"  # renamed by an applier: nobody appends to it any more


@dataclass(frozen=True)
class SpooledUnsubscribe:
    """One unsubscribe as the request asked for it."""

    subscriber_id: int
    list_id: int
    every_list: bool
    at: str  # ISO 8601, UTC: when the person asked
    ip: str | None = None
    user_agent: str = ""

    @property
    def moment(self) -> datetime:
        return datetime.fromisoformat(self.at)


def spool_dir(settings: Settings, engine: Engine) -> Path:
    """`[web] spool_dir`, else "spool" beside the SQLite file, else var/spool."""
    if settings.web.spool_dir:
        return Path(settings.web.spool_dir)
    database = sqlite_file(engine)
    return (database.parent if database is not None else Path("var")) / "spool"


class Spool:
    """Append (any thread) and take (the applier) spooled unsubscribes in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def path(self) -> Path:
        """This process's file (a new pid after a fork or restart: a new file)."""
        return self.directory / f"unsubscribe-{os.getpid()}{WAITING}"

    def append(self, entry: SpooledUnsubscribe) -> None:
        """Write one line and fsync it: once this returns, the unsubscribe survives a crash."""
        self.directory.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(asdict(entry), ensure_ascii=True) + "\n").encode("ascii")
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _same_file(fd, self.path):  # not taken by an applier meanwhile
                    os.write(fd, line)
                    os.fsync(fd)
                    break
            finally:
                os.close(fd)
        sync_dir(self.directory)

    def take(self) -> list[Path]:
        """Every file to apply: waiting ones are renamed first (under their writer's lock),
        so no line is appended to a file once it is being applied."""
        if not self.directory.is_dir():
            return []
        for path in sorted(self.directory.glob(f"*{WAITING}")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if _same_file(fd, path):
                    path.rename(path.with_name(f"{path.stem}-{os.getpid()}{TAKEN}"))
            finally:
                os.close(fd)
        return sorted(self.directory.glob(f"*{TAKEN}"))

    def waiting(self) -> bool:
        """Whether anything waits to be applied."""
        if not self.directory.is_dir():
            return False
        return any(self.directory.glob(f"*{WAITING}")) or any(self.directory.glob(f"*{TAKEN}"))


def read(path: Path) -> list[SpooledUnsubscribe]:
    """The entries of a taken file; a torn last line (a crash mid-write) is skipped."""
    entries = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            entries.append(SpooledUnsubscribe(**json.loads(line)))
        except (ValueError, TypeError):
            log.warning("spool %s line %s is not an unsubscribe: skipped", path.name, number)
    return entries


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == path.stat().st_ino
    except FileNotFoundError:
        return False
