"""Safe parsing: limits refuse what is absurd, headers decode whatever their bytes."""

from __future__ import annotations

import pytest

from digest.inbound.message import (
    MAX_CONTAINERS,
    Unreadable,
    address_of,
    addresses_in,
    decode_value,
    header_blocks,
    parse,
    returned,
)


def _nested(levels: int) -> bytes:
    message = b"Subject: inner\r\n\r\nbody\r\n"
    for level in range(levels):
        message = b"Subject: %d\r\nContent-Type: message/rfc822\r\n\r\n" % level + message
    return message


def test_nesting_limit_counts_encapsulated_messages() -> None:
    parse(_nested(5), max_nesting=5)
    with pytest.raises(Unreadable, match="nested deeper than 5"):
        parse(_nested(6), max_nesting=5)
    with pytest.raises(Unreadable, match="nested deeper than 5"):
        parse(_nested(10), max_nesting=5)


def test_thousands_of_containers_are_refused_before_parsing() -> None:
    part = b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    with pytest.raises(Unreadable, match=str(MAX_CONTAINERS)):
        parse(b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + part * 20_000, max_nesting=5)


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n  "])
def test_empty_is_unreadable(raw: bytes) -> None:
    with pytest.raises(Unreadable, match="empty"):
        parse(raw, max_nesting=5)


def test_8bit_and_encoded_headers_decode_without_errors() -> None:
    raw = (
        b"Subject: =?utf-8?b?2LHYryDYqtmE2YLYp9im2Yo=?=\r\n"
        + b"X-Latin: caf\xe9\r\nX-Utf8: "
        + "نشرة".encode()
        + b"\r\nX-Bad: =?no-such-charset?q?=E9t=E9?=\r\n"
        + b"X-Ctl: a\x1b[31mb\xe2\x80\xae\r\n\r\nbody\r\n"
    )
    mail = parse(raw, max_nesting=5)
    assert mail.header("subject") == "رد تلقائي"
    assert mail.header("x-latin") == "caf\ufffd"
    assert mail.header("x-utf8") == "نشرة"
    assert mail.header("x-bad")  # replaced characters, no LookupError
    assert mail.header("x-ctl") == "a[31mb"
    assert mail.header("missing") == ""


def test_huge_header_is_cut() -> None:
    mail = parse(b"Subject: " + b"x" * 1_000_000 + b"\r\n\r\nbody\r\n", max_nesting=5)
    assert len(mail.header("subject")) == 2000
    assert len(decode_value("y" * 10_000, 50)) == 50


def test_addresses_from_dsn_fields_and_header_values() -> None:
    assert address_of("rfc822; <Reader@Example.com>") == "Reader@Example.com"
    assert address_of("RFC822; joe@example.com") == "joe@example.com"
    assert address_of("Reader Name <r@example.com>") == "r@example.com"
    assert address_of("no address here") == ""
    assert addresses_in("a@example.com, B <b@example.com>") == ["a@example.com", "b@example.com"]


def test_header_blocks_of_a_plain_text_report_part() -> None:
    raw = (
        b'Content-Type: multipart/report; boundary="B"\r\n\r\n--B\r\n'
        b"Content-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"UmVwb3J0aW5nLU1UQTogZG5zOyBteAoKRmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAYi5jb20K\r\n"
        b"--B--\r\n"
    )
    part = next(
        p for p in parse(raw, max_nesting=5).msg.walk() if "delivery" in p.get_content_type()
    )
    blocks = header_blocks(part)
    assert [b.get("final-recipient") for b in blocks] == [None, "rfc822; a@b.com"]


def test_returned_headers_part() -> None:
    raw = (
        b'Content-Type: multipart/report; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n'
        b"\r\nx\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m@x>\r\n--B--\r\n"
    )
    found = returned(parse(raw, max_nesting=5))
    assert found is not None and found["message-id"] == "<m@x>"
