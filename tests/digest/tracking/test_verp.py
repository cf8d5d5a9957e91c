"""VERP addresses name one delivery, survive case changes, and cannot be forged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.tracking.tokens import MAX_ROW_ID
from digest.tracking.verp import BadVerp, Verp, VerpKind, VerpRef

VERP = Verp("a-test-secret-that-is-long-enough-to-sign-links", "Bounces.Example.org")


def test_address_round_trips_in_any_case() -> None:
    address = VERP.address(VerpKind.BOUNCE, 123456)
    local, _, domain = address.partition("@")
    assert domain == "bounces.example.org"
    assert local.startswith("b-") and len(local) <= 64
    assert VERP.check_address(address) == VerpRef(VerpKind.BOUNCE, 123456)
    assert VERP.check_address(address.upper()) == VerpRef(VerpKind.BOUNCE, 123456)
    assert VERP.check_address(f"<{address}>").delivery_id == 123456


def test_kinds_are_not_interchangeable() -> None:
    bounce = VERP.token(VerpKind.BOUNCE, 7)
    forged = "u" + bounce[1:]
    with pytest.raises(BadVerp, match="bad signature"):
        VERP.check_token(forged)


def test_another_secret_cannot_make_a_token() -> None:
    other = Verp("another-secret-that-is-long-enough-to-sign-links", "bounces.example.org")
    with pytest.raises(BadVerp, match="bad signature"):
        VERP.check_address(other.address(VerpKind.BOUNCE, 7))


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("b-7-abc@bounces.example.org", "not a b-/u- token"),
        ("postmaster@bounces.example.org", "not a b-/u- token"),
        ("b-7-aaaaaaaaaaaaa@elsewhere.example", "not the bounce domain"),
        ("nobody", "not an address"),
        ("b-0-aaaaaaaaaaaaa@bounces.example.org", "names no delivery"),
    ],
)
def test_bad_addresses_say_why(address: str, why: str) -> None:
    with pytest.raises(BadVerp, match=why):
        VERP.check_address(address)


def test_find_skips_forgeries_and_finds_the_real_token() -> None:
    real = VERP.token(VerpKind.BOUNCE, 42)
    text = (
        "Return-Path: <b-2a-aaaaaaaaaaaaa@bounces.example.org>\n"
        f"Message-ID: <{real}.Xy12@news.example.org>\n"
    )
    assert VERP.find(text) == VerpRef(VerpKind.BOUNCE, 42)
    assert VERP.find(text, VerpKind.UNSUBSCRIBE) is None
    assert VERP.find(f"SRS0=HHH=TT=bounces.example.org={real.upper()}@relay") is not None


@given(st.integers(min_value=1, max_value=MAX_ROW_ID), st.sampled_from(list(VerpKind)))
def test_every_delivery_id_round_trips(delivery_id: int, kind: VerpKind) -> None:
    assert VERP.check_token(VERP.token(kind, delivery_id)) == VerpRef(kind, delivery_id)


@given(st.text(max_size=80))
def test_any_text_is_refused_or_verified_never_crashes(local: str) -> None:
    try:
        ref = VERP.check_token(local)
    except BadVerp:
        return
    assert VERP.token(ref.kind, ref.delivery_id) == local.strip().lower()


def test_find_checks_a_bounded_number_of_look_alikes() -> None:
    # 50,000 forged tokens before the real one: a handful of HMACs, not 50,000 (the real one
    # past the bound is not found, which is what a stuffed message deserves).
    forged = " ".join(f"b-{n:x}-aaaaaaaaaaaaa" for n in range(1, 50_001))
    real = VERP.token(VerpKind.BOUNCE, 42)
    assert VERP.find(f"{forged} {real}") is None
    repeated = " ".join(["b-2a-aaaaaaaaaaaaa"] * 50_000)
    assert VERP.find(f"{repeated} {real}") == VerpRef(VerpKind.BOUNCE, 42)
