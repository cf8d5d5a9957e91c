"""The inbound spool: what `digest inbound` accepted, on disk and fsynced before its 250,
until the drain (digest/inbound/spool_drain.py) has processed it.

The layout is Maildir's: a group of messages is written to `tmp/`, fsynced, renamed into
`new/`, and `new/` is fsynced; only then are its messages answered 250. A file in `new/` is
therefore whole; one left in `tmp/` was never acknowledged (the sender still holds the
message) and is removed at the next start. One file holds the messages that arrived
together (group commit: one file fsync and one directory fsync per group, not per message).
Files that cannot be read are moved to `bad/`, never deleted, and logged.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import sqlite_file
from digest.inbound.verdicts import Received, Source

log = logging.getLogger(__name__)

MAGIC = b"digest inbound spool 1\n"
_END = b"end "
# Below this much free space the spool takes no more mail (451: the sender keeps it); the
# drain and the database on the same disk need room too.
MIN_FREE_BYTES = 200_000_000
_FOLDERS = ("tmp", "new", "bad")


class SpoolUnwritable(Exception):
    """The spool cannot take these messages now (disk full, no permission): answer 451."""


class SpoolBusy(Exception):
    """Another `digest inbound` holds this spool."""


class Corrupt(Exception):
    """A spool file that is not what this module writes; `why` says where it breaks."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def spool_dir(settings: Settings, engine: Engine) -> Path:
    """`[inbound] spool_dir`, else "inbound-spool" beside the SQLite file, else
    var/inbound-spool."""
    if settings.inbound.spool_dir:
        return Path(settings.inbound.spool_dir)
    database = sqlite_file(engine)
    return (database.parent if database is not None else Path("var")) / "inbound-spool"


def sync_dir(directory: Path) -> None:
    """fsync a folder, so that a file renamed into it stays there after a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(received: Received, at: datetime) -> bytes:
    head = {
        "from": received.envelope_from,
        "to": list(received.envelope_to),
        "at": (received.received_at or at).isoformat(),
        "size": len(received.raw),
        "crc": zlib.crc32(received.raw),
    }
    return json.dumps(head, ensure_ascii=True).encode("ascii") + b"\n" + received.raw + b"\n"


def encode(batch: Sequence[Received], at: datetime) -> bytes:
    """The bytes of one spool file holding `batch`."""
    body = b"".join(_record(received, at) for received in batch)
    return MAGIC + body + _END + str(len(batch)).encode("ascii") + b"\n"


def decode(data: bytes) -> list[Received]:
    """The messages of one spool file; Corrupt when it is not whole."""
    if not data.startswith(MAGIC):
        raise Corrupt("no spool header")
    position, messages = len(MAGIC), list[Received]()
    while not data.startswith(_END, position):
        line_end = data.find(b"\n", position)
        if line_end < 0:
            raise Corrupt(f"record {len(messages) + 1} has no header line")
        try:
            head = json.loads(data[position:line_end])
            size, at = int(head["size"]), datetime.fromisoformat(head["at"])
            sender, recipients, crc = str(head["from"]), tuple(map(str, head["to"])), head["crc"]
        except (ValueError, KeyError, TypeError) as exc:
            raise Corrupt(f"record {len(messages) + 1}: bad header ({exc})") from None
        raw = data[line_end + 1 : line_end + 1 + size]
        if (
            len(raw) != size
            or zlib.crc32(raw) != crc
            or data[line_end + 1 + size : line_end + 2 + size] != b"\n"
        ):
            raise Corrupt(f"record {len(messages) + 1}: truncated or altered")
        messages.append(Received(raw, Source.SMTP, sender, recipients, at))
        position = line_end + 2 + size
    if data[position:] != _END + str(len(messages)).encode("ascii") + b"\n":
        raise Corrupt("no end line, or a wrong count")
    return messages


class Spool:
    """One spool folder: `write` (the server), `waiting`/`read`/`remove` (the drain)."""

    def __init__(self, directory: Path, *, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        self.directory = directory
        self.min_free_bytes = min_free_bytes
        self._names = itertools.count()
        self._lock: int | None = None

    @property
    def new(self) -> Path:
        return self.directory / "new"

    @property
    def bad(self) -> Path:
        return self.directory / "bad"

    def open(self) -> None:
        """Create the folders, hold the spool (SpoolBusy when another server does) and
        remove what a crash left in tmp/ (never acknowledged: its sender tries again)."""
        for name in _FOLDERS:
            (self.directory / name).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolBusy(f"another `digest inbound` uses the spool {self.directory}") from None
        self._lock = fd
        for leftover in (self.directory / "tmp").iterdir():
            log.warning("inbound spool: removing %s, half-written when a server stopped", leftover)
            leftover.unlink(missing_ok=True)

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def write(self, batch: Sequence[Received]) -> Path:
        """Put `batch` durably in new/ (one file): once this returns, a crash loses none of
        it. SpoolUnwritable when it cannot (nothing is left in new/ then)."""
        try:
            free = os.statvfs(self.directory)
            if free.f_bavail * free.f_frsize < self.min_free_bytes:
                raise SpoolUnwritable(f"under {self.min_free_bytes} bytes free for the spool")
            return self._put(self.new, batch)
        except OSError as exc:
            raise SpoolUnwritable(f"cannot write the spool {self.directory}: {exc}") from exc

    def _put(self, folder: Path, batch: Sequence[Received]) -> Path:
        """Write to tmp/, fsync, rename into `folder`, fsync `folder`."""
        now = utcnow()
        name = f"{now:%Y%m%dT%H%M%S%f}-{os.getpid()}-{next(self._names):08d}"
        temporary = self.directory / "tmp" / name
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        final = folder / name
        try:
            try:
                view = memoryview(encode(batch, now))
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)  # never acknowledged: nothing may stay
            raise
        sync_dir(folder)
        return final

    def waiting(self) -> list[Path]:
        """The files in new/, oldest first (their names start with the time). Sorted as
        strings: comparing Paths cost 5 s a burst of 6,000 messages when the drain lagged."""
        try:
            names = sorted(os.listdir(self.new))
        except FileNotFoundError:
            return []
        return [self.new / name for name in names]

    def read(self, path: Path) -> list[Received] | None:
        """The messages of a file in new/; None when it is gone (another drain took it), or
        was unreadable (then it is moved to bad/)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode(data)
        except Corrupt as exc:
            self.set_aside(path, exc.why)
            return None

    def remove(self, paths: Iterable[Path]) -> None:
        """Files whose messages are committed. Not fsynced: a removal a crash undoes only
        makes the drain read the file again, and its messages are duplicates then."""
        for path in paths:
            path.unlink(missing_ok=True)

    def set_aside(self, path: Path, why: str) -> None:
        log.error("inbound spool: %s cannot be read (%s); moved to %s", path.name, why, self.bad)
        self.bad.mkdir(parents=True, exist_ok=True)
        os.replace(path, self.bad / path.name)

    def reject(self, received: Received, why: str) -> Path:
        """Keep a message that could not be processed in bad/ (a spool file of its own, as
        durable as new/'s) for a human, so that the rest of its file can go."""
        path = self._put(self.bad, [received])
        log.error("inbound spool: a message could not be processed (%s); kept as %s", why, path)
        return path
