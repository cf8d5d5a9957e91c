"""Outcomes (digest/send/outcome.py): what an SMTP reply means for the message and the address."""

from __future__ import annotations

from digest.send.outcome import Outcome


def test_outcome_classification() -> None:
    assert Outcome.from_reply(250, "2.0.0 OK").status == "sent"
    assert Outcome.from_reply(451, "4.7.1 greylisted").status == "temporary"
    assert Outcome.from_reply(552, "5.2.2 full").status == "permanent"
    assert Outcome.from_reply(354, "odd").status == "temporary"
    for code, text in [(421, "4.7.0 bye"), (451, "4.3.0 slow"), (450, "4.2.1 later")]:
        assert Outcome.from_reply(code, text).throttled
    assert Outcome.from_reply(421, "4.7.28 rate limited").throttled
    assert not Outcome.from_reply(451, "4.7.1 greylisted").throttled
    assert Outcome.from_reply(550, "5.1.1 no such user", "DATA").hard_bounce
    assert Outcome.from_reply(550, "no such user", "RCPT").hard_bounce
    assert not Outcome.from_reply(553, "sender refused", "MAIL").hard_bounce
    assert not Outcome.from_reply(550, "5.7.26 unauthenticated", "DATA").hard_bounce
    assert not Outcome.from_reply(552, "5.2.2 mailbox full", "RCPT").hard_bounce


def test_the_enhanced_code_is_read_from_the_reply_text() -> None:
    assert Outcome.from_reply(550, "5.1.1 <a@example.org>: no such user").enhanced == "5.1.1"
    assert Outcome.from_reply(250, "OK queued").enhanced is None
    assert Outcome("temporary", None, "connection lost at DATA").enhanced is None
