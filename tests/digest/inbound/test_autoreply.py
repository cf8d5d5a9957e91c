"""Auto-replies and challenge-response mail: recognised from their fields and subjects, in
English and Arabic, and never taken for bounces; bounces never taken for auto-replies."""

from __future__ import annotations

import base64

import pytest

from digest.db.models import InboundKind
from digest.inbound.autoreply import bounce_like, read_automatic
from digest.inbound.message import parse
from tests.helpers.paths import ROOT

BOUNCES = ROOT / "tests" / "data" / "inbound" / "bounces"


def _mail(headers: str, body: str = "I am away until Monday.\r\n") -> bytes:
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


def _b64_subject(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


AUTOMATIC: dict[str, tuple[bytes, InboundKind]] = {
    "exchange out of office": (
        _mail(
            "From: Reader <reader@corp.example>\nSubject: Automatic reply: Your digest\n"
            "Auto-Submitted: auto-generated\nX-Auto-Response-Suppress: All"
        ),
        InboundKind.AUTO_REPLY,
    ),
    "rfc 3834 vacation": (
        _mail("From: r@example.com\nSubject: Re: Your digest\nAuto-Submitted: auto-replied"),
        InboundKind.AUTO_REPLY,
    ),
    "x-autoreply": (
        _mail("From: r@example.com\nSubject: Thanks for your mail\nX-Autoreply: yes"),
        InboundKind.AUTO_REPLY,
    ),
    "x-autorespond": (
        _mail("From: r@example.com\nSubject: Re: digest\nX-Autorespond: Thanks"),
        InboundKind.AUTO_REPLY,
    ),
    "precedence auto_reply": (
        _mail("From: r@example.com\nSubject: Re: digest\nPrecedence: auto_reply"),
        InboundKind.AUTO_REPLY,
    ),
    "arabic out of office": (
        _mail(f"From: r@example.com\nSubject: {_b64_subject('خارج المكتب: نشرة الصباح')}"),
        InboundKind.AUTO_REPLY,
    ),
    "arabic automatic reply": (
        _mail(f"From: r@example.com\nSubject: {_b64_subject('رد تلقائي: نشرة الصباح')}"),
        InboundKind.AUTO_REPLY,
    ),
    "weak signal only": (
        _mail("From: r@example.com\nSubject: Re: digest\nPrecedence: bulk"),
        InboundKind.AUTO_REPLY,
    ),
    "boxtrapper": (
        _mail(
            "From: r@example.com\nSubject: Your email requires verification verify#123\n"
            "X-Boxtrapper: abc"
        ),
        InboundKind.CHALLENGE,
    ),
    "tmda": (
        _mail(
            "From: r-confirm@example.com\nSubject: Re: digest\nX-Delivery-Agent: TMDA/1.1.12",
            "Please confirm your message by replying.\r\n",
        ),
        InboundKind.CHALLENGE,
    ),
    "spam arrest": (
        _mail("From: r@example.com\nSubject: [SpamArrest] Please verify your email address"),
        InboundKind.CHALLENGE,
    ),
    "human check in the text": (
        _mail(
            "From: r@example.com\nSubject: Re: digest",
            "This mailbox is protected. Please confirm you are human by clicking below.\r\n",
        ),
        InboundKind.CHALLENGE,
    ),
}


@pytest.mark.parametrize("name", sorted(AUTOMATIC))
def test_automatic_answers_are_recognised(name: str) -> None:
    raw, kind = AUTOMATIC[name]
    found = read_automatic(parse(raw, max_nesting=5))
    assert found is not None
    assert found.kind is kind


def test_a_persons_reply_is_not_automatic() -> None:
    raw = _mail("From: r@example.com\nSubject: Re: digest", "Loved today's issue!\r\n")
    assert read_automatic(parse(raw, max_nesting=5)) is None


def test_auto_submitted_no_is_a_person() -> None:
    raw = _mail("From: r@example.com\nSubject: Re: digest\nAuto-Submitted: no", "Thanks\r\n")
    assert read_automatic(parse(raw, max_nesting=5)) is None


@pytest.mark.parametrize("name", ["postfix_01.txt", "exim_01.txt", "qmail_01.txt", "dsn_05.txt"])
def test_bounces_are_not_auto_replies(name: str) -> None:
    mail = parse((BOUNCES / name).read_bytes(), max_nesting=5)
    assert bounce_like(mail)
    assert read_automatic(mail) is None


def test_a_weak_signal_with_a_bounces_words_is_not_an_auto_reply() -> None:
    raw = _mail(
        'From: "Jetmail System" <>\nSubject: Mail Error\nPrecedence: bulk',
        "Your mail cannot be delivered to the following address(es):\r\n",
    )
    assert read_automatic(parse(raw, max_nesting=5)) is None
