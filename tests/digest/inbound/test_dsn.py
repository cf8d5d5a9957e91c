"""RFC 3464 reports: per recipient, hard (5.x.x), soft (4.x.x, full mailbox, policy block),
delayed; Original- before Final-Recipient; the code and diagnostic kept."""

from __future__ import annotations

import pytest

from digest.db.models import InboundKind
from digest.inbound.dsn import Report, kind_of_status, read_dsn
from digest.inbound.message import parse


def _dsn(*blocks: str) -> bytes:
    body = "\r\n\r\n".join(block.strip().replace("\n", "\r\n") for block in blocks)
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nSubject: Delivery Status Notification\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B\r\n"
        "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
        f"{body}\r\n\r\n--B--\r\n"
    ).encode()


def _read(*blocks: str) -> Report:
    report = read_dsn(parse(_dsn(*blocks), max_nesting=5))
    assert report is not None
    return report


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "kind"),
    [
        ("failed", "5.1.1", "smtp; 550 5.1.1 <a@b.com>: User unknown", InboundKind.HARD_BOUNCE),
        ("failed", "4.4.7", "smtp; 421 timeout", InboundKind.SOFT_BOUNCE),
        ("failed", "5.2.2", "smtp; 552 5.2.2 mailbox full", InboundKind.SOFT_BOUNCE),
        ("failed", "5.0.0", "smtp; 550-5.7.1 likely unsolicited mail", InboundKind.SOFT_BOUNCE),
        ("failed", "5.0.0", "x-unix; recipient reached disk quota", InboundKind.SOFT_BOUNCE),
        ("failed", "", "", InboundKind.HARD_BOUNCE),
        ("delayed", "4.4.1", "smtp; 451 try later", InboundKind.DELAYED),
        ("delivered", "2.0.0", "smtp; 250 ok", None),
        ("relayed", "2.0.0", "", None),
        ("expanded", "2.0.0", "", None),
        ("error", "5.0.0", "", InboundKind.HARD_BOUNCE),
    ],
)
def test_kind_per_recipient(action: str, status: str, diagnostic: str, kind: object) -> None:
    fields = [f"Final-Recipient: rfc822; a@b.com\nAction: {action}"]
    if status:
        fields.append(f"Status: {status}")
    if diagnostic:
        fields.append(f"Diagnostic-Code: {diagnostic}")
    report = _read("\n".join(fields))
    assert report.outcomes[0].kind is kind


def test_code_diagnostic_and_original_recipient_first() -> None:
    report = _read(
        "Original-Recipient: rfc822; Reader@Example.com\n"
        "Final-Recipient: rfc822; r@mail.example.com\n"
        "Action: failed\nStatus: 5.1.1\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <r@mail.example.com>: Recipient address rejected"
    )
    worst = report.worst
    assert worst is not None
    assert worst.addresses == ("Reader@Example.com", "r@mail.example.com")
    assert (worst.status, worst.smtp_code) == ("5.1.1", 550)
    assert worst.diagnostic.startswith("550 5.1.1")


def test_worst_outcome_first_and_addresses_per_kind() -> None:
    report = _read(
        "Final-Recipient: rfc822; late@b.com\nAction: delayed\nStatus: 4.4.1",
        "Final-Recipient: rfc822; gone@b.com\nAction: failed\nStatus: 5.1.1",
        "Final-Recipient: rfc822; ok@b.com\nAction: delivered\nStatus: 2.0.0",
    )
    assert report.worst is not None and report.worst.kind is InboundKind.HARD_BOUNCE
    assert report.addresses(InboundKind.HARD_BOUNCE) == ["gone@b.com"]
    assert report.addresses(InboundKind.DELAYED) == ["late@b.com"]


def test_only_successes_have_no_worst() -> None:
    report = _read("Final-Recipient: rfc822; ok@b.com\nAction: relayed\nStatus: 2.0.0")
    assert report.worst is None


def test_not_a_dsn() -> None:
    assert read_dsn(parse(b"Subject: hi\r\n\r\nhello\r\n", max_nesting=5)) is None


def test_status_rules() -> None:
    assert kind_of_status("5.1.1", None) is InboundKind.HARD_BOUNCE
    assert kind_of_status("4.0.0", None) is InboundKind.SOFT_BOUNCE
    assert kind_of_status("5.3.4", None) is InboundKind.SOFT_BOUNCE
    assert kind_of_status("", 550) is InboundKind.HARD_BOUNCE
    assert kind_of_status("", 552) is InboundKind.SOFT_BOUNCE
    assert kind_of_status("", 421) is InboundKind.SOFT_BOUNCE
    assert kind_of_status("", None) is None
