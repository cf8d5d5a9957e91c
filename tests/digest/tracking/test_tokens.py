"""Tokens: signed per purpose, no email inside, forged or altered ones refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.tracking.tokens import MAX_ROW_ID, BadToken, ClickRef, Purpose, Signer, tokens_for


def test_round_trip_and_purpose_separation() -> None:
    signer = Signer("s" * 32)
    token = signer.dumps(Purpose.UNSUBSCRIBE, 42, 7)
    assert signer.loads(Purpose.UNSUBSCRIBE, token) == (42, 7)
    assert "@" not in token
    with pytest.raises(BadToken):
        signer.loads(Purpose.PREFERENCES, token)  # another purpose's salt


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t.replace("42", "43", 1),
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: t + "x",
    ],
)
def test_altered_tokens_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = Signer("s" * 32)
    with pytest.raises(BadToken, match="not valid"):
        signer.loads(Purpose.UNSUBSCRIBE, mangle(signer.dumps(Purpose.UNSUBSCRIBE, 42, 7)))


def test_another_key_is_refused() -> None:
    token = Signer("a" * 32).dumps(Purpose.OPEN, 1)
    with pytest.raises(BadToken):
        Signer("b" * 32).loads(Purpose.OPEN, token)


def test_click_token_carries_link_hash() -> None:
    signer = Signer("s" * 32)
    tokens = tokens_for(signer, subscriber_id=1, list_id=2, delivery_id=3)
    assert signer.loads_click(tokens.click("abc123") + ".abc123") == ClickRef(3, "abc123", True)
    with pytest.raises(BadToken):
        signer.loads_click(tokens.click("abc123"))  # no link part: the tag is taken as the hash
    assert signer.loads(Purpose.VIEW, tokens.view) == (3,)


def test_click_token_is_bound_to_its_link() -> None:
    # Regression (issue 14, item 13): the signature covered the delivery only, so a reader's
    # token followed by another digest's link hash was a valid click.
    signer = Signer("s" * 32)
    token = signer.click(3, "abc123")
    with pytest.raises(BadToken):
        signer.loads_click(f"{token}.def456")
    with pytest.raises(BadToken):
        signer.loads_click(f"{signer.click(4, 'abc123').replace('4.', '3.', 1)}.abc123")
    with pytest.raises(BadToken):
        Signer("t" * 32).loads_click(f"{token}.abc123")


def test_click_tokens_of_emails_sent_before_link_tags_verify_unbound() -> None:
    signer = Signer("s" * 32)
    legacy = signer.dumps(Purpose.CLICK, 3)
    assert signer.loads_click(f"{legacy}.def456") == ClickRef(3, "def456", bound=False)
    with pytest.raises(BadToken):
        signer.loads_click(f"{signer.dumps(Purpose.OPEN, 3)}.def456")


@given(ids=st.lists(st.integers(MAX_ROW_ID + 1, 10**18 - 1), min_size=1, max_size=2))
def test_ids_beyond_any_row_are_refused_even_when_signed(ids: list[int]) -> None:
    # Ids past the tables' INTEGER keys would make the database raise (a 500), not a 404.
    signer = Signer("s" * 32)
    with pytest.raises(BadToken):
        signer.loads(Purpose.UNSUBSCRIBE, signer.dumps(Purpose.UNSUBSCRIBE, *ids))
    with pytest.raises(BadToken):
        signer.loads_click(f"{signer.click(ids[0], 'abc')}.abc")


def test_click_tokens_that_are_not_ascii_are_refused() -> None:
    """A tag-length run of non-ASCII letters is a bad token, not a TypeError (a 500)."""
    signer = Signer("k" * 40)
    good = signer.click(5, "abc123")
    payload, tag = good.split(".")
    for bad in (f"{payload}.{'é' * len(tag)}.abc123", f"{good}.abcé", f"٥.{tag}.abc123"):
        with pytest.raises(BadToken):
            signer.loads_click(bad)
