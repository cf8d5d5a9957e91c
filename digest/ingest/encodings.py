"""Which encoding feedparser is told a feed document has (its own guess is often wrong)."""

from __future__ import annotations

import re

# Undeclared, non-UTF-8 bytes: this engine serves Arabic publishers, whose legacy feeds
# are windows-1256 far more often than the windows-1252 feedparser would assume.
LEGACY_ENCODING = "windows-1256"
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._:-]+)", re.I)
_CHARSET = re.compile(r"charset=[\"']?([A-Za-z0-9._:-]+)", re.I)


def xml_content_type(content: bytes, content_type: str | None) -> str:
    """The content type feedparser is told: the server's, with the legacy charset when the
    bytes need it (undeclared or wrongly declared as UTF-8)."""
    declared = content_type or "application/xml"
    if _needs_legacy_encoding(content, declared):
        declared = f"{declared.split(';')[0]}; charset={LEGACY_ENCODING}"
    return declared


def _needs_legacy_encoding(content: bytes, content_type: str) -> bool:
    """Not UTF-8, yet declared as UTF-8 or not declared at all (and no UTF-16 BOM)."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        header = _CHARSET.search(content_type)
        prolog = _XML_ENCODING.match(content[:200])
        name = header.group(1) if header else prolog.group(1).decode("ascii") if prolog else "utf-8"
        return name.lower().replace("_", "-") in ("utf-8", "utf8")
    return False
