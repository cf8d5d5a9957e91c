"""Messages from files for `digest inbound process`: `.eml` files, mbox files, Maildirs,
directories of them, and one message on stdin from an MTA's pipe transport.

Everything is streamed: one message is in memory at a time (a batch at most, see
`batches`), never a whole mbox or Maildir. A message larger than `[inbound]
max_message_bytes` is not loaded, and a source that cannot be read is reported; in both
cases a `Skipped` names it and the rest goes on.
"""

from __future__ import annotations

import mailbox
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import BinaryIO

from digest.inbound.verdicts import Received, Source
from digest.text.controls import clean_line

STDIN = "-"
# A batch closes at this many messages or this many bytes, whichever comes first: big
# enough for one transaction to carry a burst, small enough to keep memory bounded.
BATCH_MESSAGES = 100
BATCH_BYTES = 32 * 1024 * 1024
_MAX_ADDRESS = 320  # RFC 3696's longest address
_MAX_RECIPIENTS = 10  # envelope recipients kept from headers and the environment
_MAX_HEAD = 256 * 1024  # header block read for the envelope; the rest is the body's business
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_DRAIN = 1024 * 1024
_MBOX_MAGIC = b"From "


@dataclass(frozen=True, slots=True)
class Skipped:
    """A message or a source that was not processed: `where` names it (a path, `PATH
    message N` inside an mbox, `-` for stdin), `why` says why. `unreadable` is True when the
    source could not be read at all, False for a message over the size cap."""

    where: str
    why: str
    unreadable: bool


@dataclass(frozen=True, slots=True)
class Envelope:
    """The envelope an MTA gave on its command line (`--sender`, `--recipient`)."""

    sender: str | None = None
    recipients: tuple[str, ...] = ()


Item = Received | Skipped


def read_sources(
    paths: Iterable[str],
    *,
    max_bytes: int,
    stdin: BinaryIO | None = None,
    environ: Mapping[str, str] | None = None,
    envelope: Envelope = Envelope(),
) -> Iterator[Item]:
    """Each message of `paths` in turn (`-` is one message on `stdin`), or a `Skipped`."""
    for path in paths:
        if path == STDIN:
            if stdin is None:
                yield Skipped(STDIN, "no standard input", unreadable=True)
            else:
                yield read_stdin(stdin, max_bytes=max_bytes, environ=environ, envelope=envelope)
        else:
            yield from read_path(Path(path), max_bytes=max_bytes)


def read_path(path: Path, *, max_bytes: int) -> Iterator[Item]:
    """The messages of one file (an .eml or an mbox) or folder (a Maildir, or a directory
    holding any of them, read recursively)."""
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.is_file()
    except OSError as exc:
        yield Skipped(str(path), _why(exc), unreadable=True)
        return
    if not exists:
        yield Skipped(str(path), "no such file or directory", unreadable=True)
    elif not is_dir:
        yield from _file(path, max_bytes)
    elif _is_maildir(path):
        yield from _maildir(path, max_bytes)
    else:
        yield from _directory(path, max_bytes)


def read_stdin(
    stdin: BinaryIO,
    *,
    max_bytes: int,
    environ: Mapping[str, str] | None = None,
    envelope: Envelope = Envelope(),
) -> Item:
    """One message on standard input, its envelope from `envelope`, then the environment
    (SENDER, ORIGINAL_RECIPIENT, RECIPIENT: what Postfix's local(8) and Exim's pipe
    transport set), then the headers the MTA prepended (Return-Path, X-Original-To,
    Delivered-To). A message over `max_bytes` is read to its end and dropped."""
    try:
        raw = stdin.read(max_bytes + 1)
        if len(raw) > max_bytes:
            while stdin.read(_DRAIN):  # the MTA expects its pipe read to the end
                pass
            return Skipped(STDIN, _too_large(max_bytes), unreadable=False)
    except OSError as exc:
        return Skipped(STDIN, _why(exc), unreadable=True)
    if not raw.strip():
        return Skipped(STDIN, "standard input is empty", unreadable=True)
    env = environ if environ is not None else {}
    sender, recipients = header_envelope(raw)
    given = envelope.recipients + tuple(
        env.get(name, "") for name in ("ORIGINAL_RECIPIENT", "RECIPIENT")
    )
    chosen = envelope.sender if envelope.sender is not None else env.get("SENDER")
    return Received(
        raw,
        Source.STDIN,
        envelope_from=_address(chosen) if chosen is not None else sender,
        envelope_to=_unique((*(_address(a) for a in given), *recipients)),
    )


def header_envelope(raw: bytes) -> tuple[str, tuple[str, ...]]:
    """The envelope the delivering MTA wrote into the top headers: the sender from
    Return-Path, the recipients from X-Original-To then Delivered-To (topmost first, that
    is the last hop first). Only the top header block is read, at most _MAX_HEAD bytes."""
    found = _HEAD_END.search(raw, 0, _MAX_HEAD)
    head = raw[: found.start() if found else _MAX_HEAD].decode("utf-8", "replace")
    try:
        message = HeaderParser(policy=compat32).parsestr(head, headersonly=True)
        path = message.get("Return-Path")
        names = [
            *(message.get_all("X-Original-To") or []),
            *(message.get_all("Delivered-To") or []),
        ]
        recipients = [a for _, a in getaddresses([str(n) for n in names])]
    except Exception:  # hostile headers: no envelope from them, the content still counts
        return "", ()
    sender = _address(parseaddr(str(path))[1]) if path is not None else ""
    return sender, _unique(_address(a) for a in recipients)


def batches(
    items: Iterable[Item],
    *,
    messages: int = BATCH_MESSAGES,
    max_bytes: int = BATCH_BYTES,
) -> Iterator[tuple[list[Received], list[Skipped]]]:
    """`items` grouped for one transaction each: up to `messages` messages or `max_bytes`
    of them, with the skips met on the way (a final group may hold skips only)."""
    batch: list[Received] = []
    skipped: list[Skipped] = []
    size = 0
    for item in items:
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        if batch and (len(batch) >= messages or size + len(item.raw) > max_bytes):
            yield batch, skipped
            batch, skipped, size = [], [], 0
        batch.append(item)
        size += len(item.raw)
    if batch or skipped:
        yield batch, skipped


def _file(path: Path, max_bytes: int) -> Iterator[Item]:
    # An mbox starts with its first "From " line; anything else is one message (an .eml,
    # a Maildir file, a message saved by a mail client).
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_MBOX_MAGIC))
    except OSError as exc:
        yield Skipped(str(path), _why(exc), unreadable=True)
        return
    if start == _MBOX_MAGIC:
        yield from _mbox(path, max_bytes)
    else:
        yield _message(path, max_bytes)


def _message(path: Path, max_bytes: int) -> Item:
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > max_bytes:
                return Skipped(str(path), _too_large(max_bytes), unreadable=False)
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        return Skipped(str(path), _why(exc), unreadable=True)
    if len(raw) > max_bytes:  # it grew meanwhile
        return Skipped(str(path), _too_large(max_bytes), unreadable=False)
    return _received(raw)


def _mbox(path: Path, max_bytes: int) -> Iterator[Item]:
    # mailbox.mbox keeps only each message's offsets (its table of contents); one message's
    # bytes are read at a time, and never more than the cap.
    try:
        box = mailbox.mbox(path, create=False)
    except (OSError, mailbox.Error) as exc:
        yield Skipped(str(path), _why(exc), unreadable=True)
        return
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            with box.get_file(key) as handle:
                raw = handle.read(max_bytes + 1)
            if len(raw) > max_bytes:
                yield Skipped(f"{path} message {number}", _too_large(max_bytes), unreadable=False)
            else:
                yield _received(raw)
    except (OSError, mailbox.Error) as exc:
        yield Skipped(str(path), _why(exc), unreadable=True)
    finally:
        box.close()


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _maildir(path: Path, max_bytes: int) -> Iterator[Item]:
    # new/ and cur/ only: tmp/ holds deliveries in progress, and Maildir++ subfolders
    # (.Processed …) are other folders.
    for sub in ("new", "cur"):
        folder = path / sub
        if not folder.is_dir():
            continue
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if not entry.name.startswith(".") and entry.is_file():
                        yield _message(Path(entry.path), max_bytes)
        except OSError as exc:
            yield Skipped(str(folder), _why(exc), unreadable=True)


def _directory(path: Path, max_bytes: int) -> Iterator[Item]:
    # Hidden entries are skipped, and directory symlinks are not followed (no loops).
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                child = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    if _is_maildir(child):
                        yield from _maildir(child, max_bytes)
                    else:
                        yield from _directory(child, max_bytes)
                elif entry.is_file():
                    yield from _file(child, max_bytes)
    except OSError as exc:
        yield Skipped(str(path), _why(exc), unreadable=True)


def _received(raw: bytes) -> Received:
    return mailbox_message(raw, Source.FILE)


def mailbox_message(raw: bytes, source: Source) -> Received:
    """A message taken from a file or a mailbox: the sender from its Return-Path (kept for
    the audit), no envelope recipients. Its headers are not an envelope anybody here saw,
    so the classifier reads them with the caution headers deserve."""
    sender, _ = header_envelope(raw)
    return Received(raw, source, envelope_from=sender)


def _address(text: str) -> str:
    value = clean_line(text).strip().strip("<>").strip()
    return value if 0 < len(value) <= _MAX_ADDRESS and " " not in value else ""


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    kept: dict[str, str] = {}  # by lower case, first spelling kept
    for address in addresses:
        if address:
            kept.setdefault(address.lower(), address)
            if len(kept) >= _MAX_RECIPIENTS:
                break
    return tuple(kept.values())


def _too_large(max_bytes: int) -> str:
    return f"larger than [inbound] max_message_bytes ({max_bytes} bytes): not processed"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read: {exc.strerror}"
    return f"cannot read: {clean_line(str(exc)) or type(exc).__name__}"
