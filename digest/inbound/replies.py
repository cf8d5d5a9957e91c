"""SMTP reply codes (RFC 5321, `550`) and enhanced status codes (RFC 3463, `5.1.1`) in text."""

from __future__ import annotations

import re

__all__ = ["STATUS", "smtp_code_of", "status_of"]

SCAN_CHARS = 1000  # a diagnostic's codes come first; the rest is the remote server's prose
# Neither inside a longer dotted number: "192.168.45.2" holds no status, "1.2.550" no code.
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_CODE = r"([245][0-5]\d)"
_LEADING = re.compile(r"[\s#(\[]*" + _CODE + r"(?![\d.])")
# `said: 550 5.1.1`, `550-5.1.1`: a reply code right before an enhanced status code.
_BEFORE_STATUS = re.compile(r"(?<![\d.])" + _CODE + r"[\s-]+[245]\.\d{1,3}\.\d{1,3}(?![\d.])")
_DIAGNOSTIC_TYPE = re.compile(r"\s*[a-z][\w-]{0,15}\s*;", re.I)  # "smtp; ", "X-Postfix; "


def status_of(*texts: str) -> str:
    """The first enhanced status code (`5.1.1`) in the texts, tried in order, or ""."""
    for text in texts:
        found = STATUS.search(text[:SCAN_CHARS])
        if found:
            return ".".join(found.groups())
    return ""


def smtp_code_of(*candidates: str | int | None) -> int | None:
    """The first SMTP reply code among the candidates: an int from 200 to 599, or in a text
    the code it starts with (`smtp; 550 5.1.1 …`, `#550`, `(550)`) or the code right before an
    enhanced status (`Remote server 192.168.45.2 said: 550 5.1.1 …`); None when none has one.
    A bare three-digit number elsewhere in prose (a size, a port) is not taken for one."""
    for candidate in candidates:
        if isinstance(candidate, bool):
            continue
        if isinstance(candidate, int):
            if 200 <= candidate <= 599:
                return candidate
            continue
        if isinstance(candidate, str):
            code = _code_in(candidate[:SCAN_CHARS])
            if code is not None:
                return code
    return None


def _code_in(text: str) -> int | None:
    typed = _DIAGNOSTIC_TYPE.match(text)
    found = _LEADING.match(text, typed.end() if typed else 0) or _BEFORE_STATUS.search(text)
    return int(found.group(1)) if found else None
