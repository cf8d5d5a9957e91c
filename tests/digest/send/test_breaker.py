"""The run's breaker (digest/send/breaker.py) on its own: when it trips, what it holds back,
what it releases; runs that trip against a real relay are in test_halt.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from digest.config import SmtpSettings
from digest.send.breaker import Breaker, BreakerOptions, kind_of, reply_of
from digest.send.claimed import Claimed
from digest.send.outcome import Outcome
from digest.send.record import Attempt

NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)
SENT = Outcome.from_reply(250, "2.0.0 ok", "DATA")
BOUNCE = Outcome.from_reply(550, "5.1.1 <x@example.org>: no such user", "RCPT")
BARE = Outcome.from_reply(550, "", "RCPT")
RELAY = Outcome.from_reply(550, "5.7.1 relaying denied", "RCPT")
TIMEOUT = Outcome("temporary", None, "no answer at DATA: timed out", "DATA")
OPTIONS = BreakerOptions(window=10, min_messages=5, permanent_share=0.5, stall_share=0.5)


def _attempt(n: int, outcome: Outcome, edition_id: int = 7) -> Attempt:
    claimed = Claimed(
        n, edition_id, 1, n, f"r{n}@example.org", "", "ar", date(2026, 11, 29), (), (), 1, NOW
    )
    return Attempt(claimed, outcome, NOW)


def _feed(breaker: Breaker, outcomes: list[Outcome]) -> list[int]:
    """The ids recorded as the outcomes come in."""
    return [a.claimed.id for i, o in enumerate(outcomes) for a in breaker.observe(_attempt(i, o))]


def test_the_settings_reach_the_breaker() -> None:
    smtp = SmtpSettings(breaker_window=50, breaker_min_messages=80, breaker_stall_share=0.3)
    options = BreakerOptions.from_settings(smtp)
    assert (options.window, options.min_messages, options.stall_share) == (50, 50, 0.3)
    assert options.where == "127.0.0.1:25"


def test_every_reader_refused_trips_it_and_nothing_is_recorded_for_good() -> None:
    breaker = Breaker(OPTIONS)
    assert _feed(breaker, [BARE] * 7) == []  # held back, never recorded
    trip = breaker.trip
    assert trip is not None and trip.kind == "permanent"
    assert (trip.count, trip.seen) == (5, 5)  # judged as soon as min_messages were in
    assert trip.replies == (("550", 5),) and trip.editions == (7,)
    assert [a.claimed.id for a in breaker.held_back()] == list(range(7))
    assert breaker.settle() == []  # a tripped breaker releases nothing


def test_a_bounce_among_good_messages_is_recorded_once_the_window_has_passed_it() -> None:
    breaker = Breaker(OPTIONS)
    recorded = _feed(breaker, [BOUNCE] + [SENT] * 9)
    assert 0 not in recorded  # still in the window: every window holding it not judged yet
    assert _feed_one(breaker, 10, SENT) == [10, 0]  # it left the window untripped
    assert breaker.trip is None


def _feed_one(breaker: Breaker, n: int, outcome: Outcome) -> list[int]:
    return [a.claimed.id for a in breaker.observe(_attempt(n, outcome))]


def test_the_end_of_a_run_releases_what_is_held_and_a_short_run_is_never_judged() -> None:
    breaker = Breaker(OPTIONS)
    assert _feed(breaker, [BOUNCE, BOUNCE, SENT]) == [2]
    assert breaker.trip is None  # 3 outcomes: fewer than min_messages
    assert [a.claimed.id for a in breaker.settle()] == [0, 1]


def test_a_relay_that_goes_bad_mid_run_keeps_the_earlier_bounces_genuine() -> None:
    breaker = Breaker(OPTIONS)
    recorded = _feed(breaker, [BOUNCE] + [SENT] * 14 + [RELAY] * 10)
    assert 0 in recorded  # judged and passed before the relay went wrong
    trip = breaker.trip
    assert trip is not None and trip.relay_refused
    assert "refuses to relay" in trip.explain("relay:25", given_back=3, held=[7])


def test_timeouts_and_throttling_trip_it_as_a_stall() -> None:
    breaker = Breaker(OPTIONS)
    throttled = Outcome.from_reply(421, "4.7.0 Try again later, closing connection")
    recorded = _feed(breaker, [SENT, TIMEOUT, throttled, TIMEOUT, SENT])
    assert recorded == [0, 1, 2, 3, 4]  # temporary failures are retried anyway: recorded
    trip = breaker.trip
    assert trip is not None and trip.kind == "stall"
    message = trip.explain("relay:25", given_back=0, held=[7])
    assert "3 of the last 5 messages timed out" in message and "smtp.timeout" in message


def test_greylisting_and_refusals_made_here_do_not_count() -> None:
    breaker = Breaker(OPTIONS)
    greylisted = Outcome.from_reply(451, "4.7.1 greylisted")
    no_utf8 = Outcome("permanent", None, "not sent: no SMTPUTF8")
    _feed(breaker, [greylisted, no_utf8] * 10)
    assert breaker.trip is None
    assert kind_of(greylisted) == kind_of(no_utf8) == "other"


def test_the_message_names_the_share_the_replies_and_what_to_do() -> None:
    breaker = Breaker(OPTIONS)
    _feed(breaker, [BOUNCE] * 5)
    assert breaker.trip is not None
    message = breaker.trip.explain("mx.example.org:25", given_back=300, held=[7])
    assert "5 of the last 5 messages refused permanently (100%, threshold 50%" in message
    assert "'550 5.1.1 <…>: no such user' ×5" in message  # addresses grouped away
    assert "Nothing was suppressed" in message and "300 deliveries" in message
    assert "smtp.host (mx.example.org:25)" in message
    assert "`digest editions release 7`" in message


def test_reset_starts_a_fresh_judgement() -> None:
    breaker = Breaker(OPTIONS)
    _feed(breaker, [BARE] * 5)
    breaker.reset()
    assert breaker.trip is None and breaker.held_back() == []


def test_after_a_trip_failures_a_fresh_window_could_not_judge_are_never_released() -> None:
    # Scenario: a worker tripped on one list, then sent the other lists' few rows through a
    # freshly reset breaker: too few to judge, they were recorded (and suppressed) at the end.
    breaker = Breaker(OPTIONS)
    _feed(breaker, [BOUNCE] * 5)
    breaker.reset()
    assert _feed(breaker, [BOUNCE, BOUNCE, SENT]) == [2]
    assert breaker.settle() == [] and breaker.trip is not None  # counted with the last trip
    assert [a.claimed.id for a in breaker.held_back()] == [0, 1]
    # A full window since the trip clears the relay: then the end of a run records as usual.
    breaker.reset()
    _feed(breaker, [BOUNCE] + [SENT] * 5)
    assert breaker.trip is None and [a.claimed.id for a in breaker.settle()] == [0]


def test_reply_grouping_drops_addresses() -> None:
    assert reply_of(Outcome.from_reply(554, "5.7.1 <a@b.org>: Relay access denied")) == (
        "554 5.7.1 <…>: Relay access denied"
    )


@given(st.lists(st.sampled_from([SENT, BOUNCE, BARE, RELAY, TIMEOUT]), max_size=60))
def test_a_permanent_failure_is_recorded_only_if_the_breaker_never_trips(
    outcomes: list[Outcome],
) -> None:
    # Whatever the order, a tripped run has recorded no permanent failure that could
    # suppress or fail a reader for good while the breaker was judging it; an untripped
    # run records every outcome exactly once.
    breaker = Breaker(OPTIONS)
    recorded = _feed(breaker, outcomes)
    if breaker.trip is None:
        recorded += [a.claimed.id for a in breaker.settle()]
        assert sorted(recorded) == list(range(len(outcomes)))
        return
    held = {a.claimed.id for a in breaker.held_back()}
    assert held.isdisjoint(recorded)
    assert set(recorded) | held == set(range(len(outcomes)))
