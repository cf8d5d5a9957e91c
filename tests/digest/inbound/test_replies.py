"""Reply and enhanced status codes in bounce text: one reading for DSNs and every ESP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from digest.inbound.dsn import read_dsn
from digest.inbound.esp.mailgun import mailgun_verdicts
from digest.inbound.esp.postmark import postmark_verdicts
from digest.inbound.esp.sendgrid import sendgrid_verdicts
from digest.inbound.esp.ses import ses_verdicts
from digest.inbound.message import parse
from digest.inbound.replies import smtp_code_of, status_of
from digest.inbound.verdicts import Verdict
from tests.helpers.esp import (
    MAILGUN_FAILED,
    POSTMARK_BOUNCE,
    SENDGRID_BATCH,
    SES_BOUNCE,
    ses_event,
    sns_notification,
)

SAID = "Remote server 192.168.45.2 said: 550 5.1.1 <jane@example.com>: Recipient unknown"


def _ses(diagnostic: str) -> list[Verdict]:
    event = ses_event(SES_BOUNCE)
    event["bounce"]["bouncedRecipients"][0].update(status="", diagnosticCode=diagnostic)
    return ses_verdicts(sns_notification(event))


def _postmark(diagnostic: str) -> list[Verdict]:
    return postmark_verdicts(json.dumps({**POSTMARK_BOUNCE, "Details": diagnostic}).encode())


def _sendgrid(diagnostic: str) -> list[Verdict]:
    [bounce] = [e for e in SENDGRID_BATCH if e["event"] == "bounce"]
    event = {**bounce, "status": "", "reason": diagnostic}
    return sendgrid_verdicts(json.dumps([event]).encode())


def _mailgun(diagnostic: str) -> list[Verdict]:
    status = {"message": diagnostic, "description": "", "code": None}
    return mailgun_verdicts({"event-data": {**MAILGUN_FAILED, "delivery-status": status}})


def _dsn(diagnostic: str) -> list[Verdict]:
    raw = (
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; jane@example.com\r\nAction: failed\r\nStatus: 5.0.0\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n--B--\r\n"
    ).encode()
    report = read_dsn(parse(raw, max_nesting=5))
    worst = report.worst if report else None
    assert worst is not None and worst.kind is not None
    return [Verdict(worst.kind, status=worst.status, smtp_code=worst.smtp_code)]


READERS: dict[str, Callable[[str], list[Verdict]]] = {
    "ses": _ses,
    "postmark": _postmark,
    "sendgrid": _sendgrid,
    "mailgun": _mailgun,
    "dsn": _dsn,
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_an_ip_address_in_the_diagnostic_is_not_a_status(name: str) -> None:
    [verdict] = READERS[name](SAID)
    assert (verdict.status, verdict.smtp_code) == ("5.1.1", 550)


@pytest.mark.parametrize(
    ("texts", "status"),
    [
        (("550 5.1.1 no such user",), "5.1.1"),
        (("", "smtp; 550 5.1.1 <a@b>"), "5.1.1"),
        ((SAID,), "5.1.1"),
        (("host 10.4.2.1 refused",), ""),
        (("version 1.2.3.4 said 4.2.2 full",), "4.2.2"),
        (("5.1.10",), "5.1.10"),
        (("x5.1.1", "v2.5.1.1"), "5.1.1"),  # a letter is no digit: "x5.1.1" still reads
    ],
)
def test_status_of(texts: tuple[str, ...], status: str) -> None:
    assert status_of(*texts) == status


@pytest.mark.parametrize(
    ("candidates", "code"),
    [
        (("550 5.1.1 no such user",), 550),
        (("smtp; 550 5.1.1 <a@b>",), 550),
        (("X-Postfix; 450 4.2.0 greylisted",), 450),
        (("#550 user unknown",), 550),
        (("(552) quota",), 552),
        ((SAID,), 550),
        (("550-5.7.1 blocked",), 550),
        (("message of 250 KB refused",), None),  # a size, not a reply
        (("host 10.4.2.1 said 192",), None),
        ((605, "550 5.1.1"), 550),  # 605 is Mailgun's own code
        ((True, 450), 450),
        ((None, "", 421), 421),
    ],
)
def test_smtp_code_of(candidates: tuple[Any, ...], code: int | None) -> None:
    assert smtp_code_of(*candidates) == code
