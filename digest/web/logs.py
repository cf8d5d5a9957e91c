"""Log lines without tokens: each signed token, cookie or form token becomes a short hash."""

from __future__ import annotations

import hashlib
import logging
import re
import traceback

# A token: dot-joined base64url parts with a digit somewhere (signed links, form tokens), or
# one long run (session ids). Module paths (`digest.web.app`) and words are left alone.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|[A-Za-z0-9_-]{32,}")


def redact(text: str) -> str:
    """`text` with every token replaced by `tok#` and 8 hex digits of its SHA-256."""
    return _TOKEN.sub(_hashed, text)


def _hashed(match: re.Match[str]) -> str:
    value = match.group()
    if len(value) < 32 and (len(value) < 16 or not any(c.isdigit() for c in value)):
        return value
    return "tok#" + hashlib.sha256(value.encode()).hexdigest()[:8]


class RedactTokens(logging.Filter):
    """Redacts a logger's messages, arguments and tracebacks (uvicorn's access and error logs:
    request paths hold tokens, and an exception's message may quote one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_logger(name: str) -> None:
    """Install `RedactTokens` on logger `name` (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
