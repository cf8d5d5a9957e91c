"""Boundaries renamed before parsing (digest/inbound/boundaries.py): the parser sees the same
parts with the same contents, and anything unusual is left as it came."""

from __future__ import annotations

from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from digest.inbound.boundaries import NAME, renamed

DATA = Path(__file__).resolve().parents[2] / "data" / "inbound"
SAMPLES = sorted(p for p in DATA.rglob("*") if p.suffix in {".txt", ".eml"})
_PARSER = BytesParser(policy=policy.compat32)


def _shape(raw: bytes) -> list[tuple[str, str]]:
    """Each part's content type and, for a leaf, its payload (what readers look at)."""
    out = []
    for part in _PARSER.parsebytes(raw).walk():
        payload = part.get_payload()
        text = "" if isinstance(payload, list) else str(payload)
        out.append((part.get_content_type(), text))
    return out


def _multipart(outer: bytes, inner: bytes) -> bytes:
    return (
        b"From: MAILER-DAEMON@example.net\r\nContent-Type: multipart/report;\r\n"
        b' report-type=delivery-status; boundary="' + outer + b'"\r\n\r\npreamble\r\n'
        b"--" + outer + b"\r\nContent-Type: text/plain\r\n\r\nfailed: --" + outer + b"x\r\n"
        b"--" + outer + b"\r\nContent-Type: multipart/alternative; boundary=" + inner + b"\r\n"
        b"\r\n--" + inner + b"\r\nContent-Type: text/plain\r\n\r\ninner one\r\n"
        b"--" + inner + b"--\r\n"
        b"--" + outer + b"--\r\nepilogue\r\n"
    )


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_parses_to_the_same_parts_and_contents(sample: Path) -> None:
    raw = sample.read_bytes()
    assert _shape(renamed(raw, raw.lower())) == _shape(raw)


def test_only_delimiter_lines_of_the_top_level_change_up_to_the_closing_one() -> None:
    raw = _multipart(b"abc", b"abcd") + b"--abc\r\n"  # in the epilogue: text
    out = renamed(raw, raw.lower())
    assert out.count(NAME) == 4  # the parameter, two delimiters, the closing one
    assert b"failed: --abcx" in out and b"--abcd\r\n" in out  # text, the inner boundary
    assert out.endswith(b"--abc\r\n")
    assert _shape(out) == _shape(raw)
    assert [t for t, _ in _shape(out)] == [
        "multipart/report",
        "text/plain",
        "multipart/alternative",
        "text/plain",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        _multipart(b"abc", b"def").replace(b'boundary="abc"', b"boundary*=utf-8''abc"),
        _multipart(b"abc", b"def").replace(b"From:", b"X-Note: boundary=x\r\nFrom:"),
        _multipart(b"abc", b"def").replace(b"\r\npreamble", b"\rpreamble"),
        _multipart(b"ab c", b"def"),  # a space: the parser strips it, renaming could not
        _multipart(b"<abc>", b"def"),  # the parser strips the brackets
        _multipart(b"abc", b"def") + NAME + b"\r\n",
        b"Subject: plain\r\nX-Boundary: boundary=abc\r\n\r\n--abc\r\n",
    ],
    ids=["rfc2231", "second-param", "lone-cr", "space", "brackets", "name-present", "plain"],
)
def test_anything_unusual_is_left_as_it_came(raw: bytes) -> None:
    assert renamed(raw, raw.lower()) is raw


def test_the_fixed_name_repeats_from_one_message_to_the_next() -> None:
    for raw in (_multipart(b"one-1", b"two-2"), _multipart(b"three-3", b"four-4")):
        message: Message = _PARSER.parsebytes(renamed(raw, raw.lower()))
        assert message.get_boundary() == NAME.decode()
