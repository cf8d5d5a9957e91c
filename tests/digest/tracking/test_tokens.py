"""Tokens: signed per purpose, no email inside, forged or altered ones refused."""

from __future__ import annotations

import pytest

from digest.tracking.tokens import BadToken, Purpose, Signer, tokens_for


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
    assert signer.loads_click(tokens.click + ".abc123") == (3, "abc123")
    with pytest.raises(BadToken):
        signer.loads_click(tokens.click)  # no link part: the signature is taken as the hash
    assert signer.loads(Purpose.VIEW, tokens.view) == (3,)
