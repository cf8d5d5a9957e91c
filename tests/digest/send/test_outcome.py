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


def test_a_relay_or_login_refusal_never_blames_the_reader() -> None:
    # Scenario: a relay that denies relaying, wants a login or refuses our sender: whatever
    # the code, the enhanced status or the stage, the reader's address is not suppressed,
    # and the delivery stays retryable (it goes through once the configuration is fixed).
    for code, text, stage in [
        (550, "relay not permitted", "RCPT"),
        (550, "5.7.1 relaying denied", "RCPT"),
        (554, "5.7.1 <r1@example.org>: Relay access denied", "RCPT"),
        (550, "not permitted to relay", "RCPT"),
        (550, "Authentication required", "RCPT"),
        (530, "5.7.0 Authentication required", "MAIL"),
        (535, "5.7.8 Authentication credentials invalid", "MAIL"),
        (553, "5.1.8 Domain of sender address does not exist", "MAIL"),
        (550, "5.1.8 <news@x.org>: Sender address rejected: Domain not found", "RCPT"),
        (550, "5.1.1 whatever it says", "MAIL"),
    ]:
        outcome = Outcome.from_reply(code, text, stage)  # type: ignore[arg-type]
        assert outcome.blame == "sender", (code, text, stage)
        assert not outcome.hard_bounce and outcome.retryable


def test_policy_refusals_and_our_own_refusals_fail_the_message_only() -> None:
    for outcome in [
        Outcome.from_reply(550, "5.7.26 unauthenticated mail is prohibited", "DATA"),
        Outcome.from_reply(550, "Policy rejection", "RCPT"),
        Outcome.from_reply(554, "Blocked: listed at a blocklist", "RCPT"),
        Outcome.from_reply(552, "5.2.2 mailbox full", "RCPT"),
        # No server answered: an address this relay cannot take (no SMTPUTF8), an address
        # that cannot go on the wire.
        Outcome("permanent", None, "not sent: no SMTPUTF8"),
        Outcome("permanent", None, "unusable address: bad", "RCPT"),
    ]:
        assert outcome.blame == "message", outcome
        assert not outcome.hard_bounce and not outcome.retryable


def test_only_a_server_reply_about_the_address_is_a_hard_bounce() -> None:
    assert Outcome.from_reply(550, "", "RCPT").blame == "reader"  # bare: the breaker guards it
    assert Outcome.from_reply(550, "5.1.1 <a@example.org>: no such user", "RCPT").hard_bounce
    assert Outcome.from_reply(550, "5.2.1 mailbox disabled", "DATA").hard_bounce
    assert Outcome.from_reply(250, "ok").blame is None
    assert Outcome.from_reply(451, "4.7.1 later").blame is None


def test_timeouts_drops_and_throttling_are_stalls() -> None:
    assert Outcome("temporary", None, "no answer at DATA", "DATA").stalled
    assert Outcome("temporary", None, "connection lost at RCPT", "RCPT").stalled
    assert Outcome.from_reply(421, "4.7.0 closing").stalled
    assert not Outcome.from_reply(451, "4.7.1 greylisted").stalled
    assert not Outcome.from_reply(550, "5.1.1 gone").stalled


def test_an_unknown_reader_is_blamed_on_the_reader_whatever_words_follow() -> None:
    # Scenario: Postfix's "User unknown in relay recipient table" said "relay", so it was
    # blamed on the sender and the address was never suppressed.
    for code, text in [
        (
            550,
            "5.1.1 <bob@x.org>: Recipient address rejected: User unknown in relay recipient table",
        ),
        (550, "5.1.1 No such user - psmtp"),
        (550, "No such user - psmtp"),
        (550, "5.1.0 Address rejected"),
        (550, "5.2.1 The email account that you tried to reach is disabled"),
    ]:
        outcome = Outcome.from_reply(code, text, "RCPT")
        assert outcome.blame == "reader", text
        assert outcome.hard_bounce and not outcome.retryable
    for text in [
        "5.7.1 <r1@example.org>: Relay access denied",
        "relaying prohibited",
        "5.7.1 Unable to relay for bob@x.org",
        "relay not allowed",
        "5.1.8 <news@x.org>: Sender address rejected: Domain not found",
    ]:
        assert Outcome.from_reply(550, text, "RCPT").blame == "sender", text
