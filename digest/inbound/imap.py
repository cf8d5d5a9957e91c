"""IMAP polling of `[inbound.imap]`: a hosted mailbox that bounces land in, read by the
scheduler's `inbound` job with the standard library's imaplib.

One poll: select the folder, take up to `batch` messages by UID with BODY.PEEK[] (nothing
is marked read before it is stored), process them in one transaction, then move each:
unknown ones to `human_folder` (a person reads them; nothing is ever deleted unread), the
rest to `processed_folder`. When the database is unavailable nothing is moved and the next
poll takes the same messages again; one processed twice is a duplicate and changes nothing.
"""

from __future__ import annotations

import base64
import imaplib
import logging
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from digest.config import ImapSettings, is_loopback
from digest.db.models import InboundKind
from digest.errors import DigestError
from digest.inbound.process import InboundUnavailable
from digest.inbound.sources import BATCH_BYTES, Skipped, mailbox_message
from digest.inbound.tally import Process, Tally
from digest.inbound.verdicts import Received, Source
from digest.text.controls import clean_line

logger = logging.getLogger(__name__)

_FETCHED = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class ImapError(DigestError):
    """The IMAP server cannot be reached, or refused a command (named, with its answer)."""


class Mailbox:
    """The few IMAP commands a poll needs, over one logged-in connection."""

    def __init__(self, connection: imaplib.IMAP4) -> None:
        self.connection = connection
        kind, data = connection.capability()
        words = data[0].split() if kind == "OK" and data and isinstance(data[0], bytes) else []
        # Asked again after LOGIN: servers announce MOVE and UIDPLUS to logged-in users only.
        self.capabilities = {w.decode("ascii", "replace").upper() for w in words}

    def _ok(self, what: str, answer: tuple[str, list[Any]]) -> list[Any]:
        kind, data = answer
        if kind != "OK":
            said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise ImapError(f"IMAP {what} refused: {clean_line(said)[:200]}")
        return data

    def ensure_folder(self, name: str) -> None:
        """Create (and subscribe to) folder `name` unless it exists."""
        data = self._ok("LIST", self.connection.list('""', quote(name)))
        if any(item is not None for item in data):
            return
        self._ok(f"CREATE {name}", self.connection.create(quote(name)))
        self.connection.subscribe(quote(name))  # shown by mail clients; failing is harmless

    def select(self, name: str) -> None:
        self._ok(f"SELECT {name}", self.connection.select(quote(name)))

    def uids(self, limit: int) -> list[int]:
        """The first `limit` messages not marked \\Deleted, oldest first."""
        data = self._ok("UID SEARCH", self.connection.uid("SEARCH", "UNDELETED"))
        found = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted(int(u) for u in found if u.isdigit())[:limit]

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """Each message's size (RFC822.SIZE), before any of it is fetched."""
        if not uids:
            return {}
        data = self._ok("UID FETCH", self.connection.uid("FETCH", _set(uids), "(RFC822.SIZE)"))
        sizes: dict[int, int] = {}
        for line in data:
            head = line[0] if isinstance(line, tuple) else line
            if isinstance(head, bytes):
                uid, size = _FETCHED.search(head), _SIZE.search(head)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def fetch(self, uid: int) -> bytes | None:
        """The whole message, without setting \\Seen; None when it is gone meanwhile."""
        data = self._ok("UID FETCH", self.connection.uid("FETCH", str(uid), "(BODY.PEEK[])"))
        for part in data:
            if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
                found = _FETCHED.search(part[0]) if isinstance(part[0], bytes) else None
                if found is None or int(found.group(1)) == uid:
                    return part[1]
        return None

    def move(self, uids: Sequence[int], folder: str) -> None:
        """MOVE (RFC 6851) when the server has it; else UID COPY, \\Deleted and UID EXPUNGE
        of these UIDs only (UIDPLUS). Without UIDPLUS they stay marked \\Deleted: a plain
        EXPUNGE would also remove messages someone else marked."""
        if not uids:
            return
        if "MOVE" in self.capabilities:
            self._ok(f"UID MOVE {folder}", self.connection.uid("MOVE", _set(uids), quote(folder)))
            return
        self._ok(f"UID COPY {folder}", self.connection.uid("COPY", _set(uids), quote(folder)))
        flags = self.connection.uid("STORE", _set(uids), "+FLAGS.SILENT", r"(\Deleted)")
        self._ok("UID STORE", flags)
        if "UIDPLUS" in self.capabilities:
            self._ok("UID EXPUNGE", self.connection.uid("EXPUNGE", _set(uids)))


@contextmanager
def connect(config: ImapSettings) -> Iterator[Mailbox]:
    """A logged-in Mailbox on `config` (implicit TLS, STARTTLS or plain), logged out after."""
    context = ssl.create_default_context()
    connection: imaplib.IMAP4
    if config.tls:
        connection = imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=context, timeout=config.timeout
        )
    else:
        connection = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
        if config.starttls:
            connection.starttls(context)
        elif not is_loopback(config.host):
            logger.warning(
                "inbound.imap: the password goes to %s unencrypted (set tls or starttls)",
                config.host,
            )
    try:
        connection.login(config.user, config.password)
        yield Mailbox(connection)
    finally:
        with suppress(OSError, imaplib.IMAP4.error):  # the session is over either way
            connection.logout()


def poll(
    config: ImapSettings,
    process: Process,
    *,
    max_bytes: int,
    stop: Callable[[], bool] = lambda: False,
    mailbox: Mailbox | None = None,
) -> Tally:
    """One poll of `config.folder` (see the module's doc); `mailbox` for a connection
    already open, else one is opened on `config`. InboundUnavailable propagates once
    nothing of its batch has moved; the server's failures are ImapError."""
    if mailbox is None:
        try:
            with connect(config) as opened:
                return poll(config, process, max_bytes=max_bytes, stop=stop, mailbox=opened)
        except (OSError, imaplib.IMAP4.error) as exc:
            why = clean_line(str(exc))[:200] or type(exc).__name__
            raise ImapError(f"IMAP {config.host}:{config.port}: {why}") from exc
    for folder in (config.processed_folder, config.human_folder):
        mailbox.ensure_folder(folder)
    mailbox.select(config.folder)
    uids = mailbox.uids(config.batch)
    sizes = mailbox.sizes(uids)
    tally = Tally()
    too_large = [uid for uid in uids if sizes.get(uid, 0) > max_bytes]
    for uid in too_large:
        tally.skip(Skipped(f"{config.folder} UID {uid}", "too large", unreadable=False))
    chunk: list[tuple[int, Received]] = []
    size = 0
    for uid in uids:
        if stop():
            break  # the scheduler stops: what was fetched is stored and moved first
        if uid in too_large:
            continue
        raw = mailbox.fetch(uid)
        if raw is None:
            continue
        if chunk and size + len(raw) > BATCH_BYTES:  # memory stays bounded
            _store(mailbox, config, process, chunk, tally)
            chunk, size = [], 0
        chunk.append((uid, mailbox_message(raw, Source.IMAP)))
        size += len(raw)
    _store(mailbox, config, process, chunk, tally)
    mailbox.move(too_large, config.human_folder)  # nobody can read them here: a person will
    return tally


def _store(
    mailbox: Mailbox,
    config: ImapSettings,
    process: Process,
    chunk: list[tuple[int, Received]],
    tally: Tally,
) -> None:
    if not chunk:
        return
    try:
        handled = process([received for _, received in chunk])
    except InboundUnavailable:
        raise
    except Exception:
        # A bug in reading some message: one at a time, so it cannot hold the others
        # back; the one that still fails goes to a person.
        if len(chunk) > 1:
            for one in chunk:
                _store(mailbox, config, process, [one], tally)
            return
        uid = chunk[0][0]
        logger.exception("inbound.imap: UID %d could not be processed; moved for a person", uid)
        tally.skip(Skipped(f"{config.folder} UID {uid}", "could not be processed", unreadable=True))
        mailbox.move([uid], config.human_folder)
        return
    tally.add(handled)
    unknown = {
        uid for (uid, _), one in zip(chunk, handled, strict=True) if one.kind is InboundKind.UNKNOWN
    }
    done = [uid for uid, _ in chunk if uid not in unknown]
    mailbox.move(sorted(unknown), config.human_folder)
    mailbox.move(done, config.processed_folder)


def quote(name: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3)."""
    encoded = _modified_utf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _set(uids: Sequence[int]) -> str:
    return ",".join(str(uid) for uid in uids)
