"""The log of the long-running commands (serve, scheduler, worker, inbound): stdout, one line
per record, in `[log] format`:

- "plain": `LEVEL logger: message`, with no time stamp: journald stamps every line it
  receives (and adds the unit and PID), so a second stamp would only double it. When stdout
  is the journal (systemd's JOURNAL_STREAM names it), each line starts with the `<N>`
  syslog priority prefix journald reads and strips, so `journalctl -p warning` works.
- "json": one JSON object per line (time, level, logger, message, exception), for
  collectors that read stdout without journald's time.

A record never breaks its line: in plain lines line breaks and other control characters
become escapes (`\\n`), JSON escapes them itself; a traceback rides on its record's line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

from digest.settings.logs import LogSettings

__all__ = ["JsonFormatter", "PlainFormatter", "StdoutHandler", "install", "service_logging"]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Libraries whose routine lines would drown ours: our own line per job run says what
# APScheduler would (and skips are logged by us); httpx logs every feed request.
QUIET = {"apscheduler": logging.ERROR, "httpx": logging.WARNING, "alembic": logging.WARNING}
# sd-daemon(3) priorities for the `<N>` prefix: the first level at or above the record's.
_PRIORITY = ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3))

# Everything str.splitlines() breaks on, the other control characters but tab, and the bidi
# overrides and isolates (they would reorder what a terminal shows of the line).
_BREAKING = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# What json.dumps(ensure_ascii=False) leaves raw but splits a line (U+2028, U+2029, NEL) or
# acts on a terminal (C1 controls, bidi overrides); as \uXXXX they are the same JSON string.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def one_line(text: str) -> str:
    """`text` with line breaks and control characters written as escapes (`\\n`, `\\x1b`)."""
    return _BREAKING.sub(lambda m: _NAMED.get(m.group()) or _escape(m.group()), text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The record's traceback and stack, as logging would print them ('' when none)."""
    parts = []
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(formatter.formatException(record.exc_info))
    elif record.exc_text:  # already formatted (digest.web.logs redacts tracebacks so)
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(parts)


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (CRITICAL and above: 2, crit)."""
    return next((number for level, number in _PRIORITY if levelno <= level), 2)


class PlainFormatter(logging.Formatter):
    """`LEVEL logger: message | traceback`, on one line; `journal`: with the `<N>` prefix."""

    def __init__(self, *, journal: bool = False) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        exception = exception_text(self, record)
        if exception:
            text = f"{text} | {exception}"
        prefix = f"<{priority(record.levelno)}>" if self.journal else ""
        return prefix + one_line(text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        data = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        exception = exception_text(self, record)
        if exception:
            data["exception"] = exception
        text = json.dumps(data, ensure_ascii=False, default=str)
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class StdoutHandler(logging.Handler):
    """Writes each record to whatever `sys.stdout` is when it comes (a test runner swaps it;
    a handler holding the old one would write to a closed file), flushed: a pipe to
    journald or a collector gets each line at once."""

    def __init__(self, stream: Callable[[], TextIO] = lambda: sys.stdout) -> None:
        super().__init__()
        self.stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            out = self.stream()
            out.write(line + "\n")
            out.flush()
        except Exception:
            self.handleError(record)


def stdout_is_journal(environ: dict[str, str] | None = None) -> bool:
    """True when stdout is journald's stream: systemd sets JOURNAL_STREAM to its
    `device:inode` (a child that redirected stdout elsewhere keeps the variable)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        stat = os.fstat(sys.stdout.fileno())
        return (stat.st_dev, stat.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):  # no variable, or stdout is no real file
        return False


def formatter_for(settings: LogSettings, *, journal: bool | None = None) -> logging.Formatter:
    if settings.format == "json":
        return JsonFormatter()
    return PlainFormatter(journal=stdout_is_journal() if journal is None else journal)


def install(settings: LogSettings, *, journal: bool | None = None) -> Callable[[], None]:
    """Send every record at `[log] level` and above to stdout in `[log] format` (replacing
    one installed before); returns the function that puts logging back as it was."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StdoutHandler)]:
        root.removeHandler(old)
    level = LEVELS[settings.level]
    handler = StdoutHandler()
    handler.setLevel(level)  # also for loggers set lower than the root (uvicorn's)
    handler.setFormatter(formatter_for(settings, journal=journal))
    previous = root.level
    quieted = {name: logging.getLogger(name).level for name in QUIET}
    root.addHandler(handler)
    root.setLevel(level)
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, level))

    def restore() -> None:
        root.removeHandler(handler)
        root.setLevel(previous)
        for name, was in quieted.items():
            logging.getLogger(name).setLevel(was)

    return restore


@contextmanager
def service_logging(settings: LogSettings) -> Iterator[None]:
    """`install` for the length of a command (in-process runs leave logging as it was)."""
    restore = install(settings)
    try:
        yield
    finally:
        restore()
