"""Who the bounce domain's MX takes mail for (digest/inbound/gate.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.config import Settings
from digest.errors import ConfigError
from digest.inbound.gate import Gate, Refused
from digest.tracking.tokens import MAX_ROW_ID
from digest.tracking.verp import Verp, VerpKind

DOMAIN = "bounces.example.org"
VERP = Verp("a-test-secret-that-is-long-enough-000", DOMAIN)
GATE = Gate(VERP, frozenset({"postmaster", "abuse"}))


def _refused(address: str) -> str:
    with pytest.raises(Refused) as caught:
        GATE.admit(address)
    return caught.value.why


def test_signed_bounce_and_unsubscribe_addresses_are_admitted_in_any_case() -> None:
    bounce = VERP.address(VerpKind.BOUNCE, 1234)
    assert GATE.admit(bounce).kind is VerpKind.BOUNCE
    assert GATE.admit(bounce.upper()).kind is VerpKind.BOUNCE  # MTAs may fold the case
    assert GATE.admit(f"<{VERP.address(VerpKind.UNSUBSCRIBE, 9)}>").kind is VerpKind.UNSUBSCRIBE
    assert GATE.admit(bounce + ".").kind is VerpKind.BOUNCE  # a rooted domain


def test_the_configured_mailboxes_and_a_bare_postmaster_are_admitted() -> None:
    assert GATE.admit(f"postmaster@{DOMAIN}").kind is None
    assert GATE.admit(f"Abuse@{DOMAIN.upper()}").kind is None
    assert GATE.admit("Postmaster").kind is None  # RFC 5321 4.5.1


def test_forged_truncated_and_foreign_addresses_are_refused_with_the_reason() -> None:
    good = VERP.token(VerpKind.BOUNCE, 1234)
    forged = good[:-1] + ("a" if good[-1] != "a" else "b")
    assert "bad signature" in _refused(f"{forged}@{DOMAIN}")
    assert "not a b-/u- token" in _refused(f"{good[:-3]}@{DOMAIN}")
    other_kind = "u" + good[1:]  # a bounce token's signature does not sign an unsubscribe
    assert "bad signature" in _refused(f"{other_kind}@{DOMAIN}")
    assert "relaying denied" in _refused(f"{good}@example.com")
    assert "relaying denied" in _refused("someone@gmail.com")
    assert "not a b-/u- token" in _refused(f"info@{DOMAIN}")
    assert "no domain" in _refused("abuse")
    assert "longer than" in _refused("b-" + "x" * 400 + f"@{DOMAIN}")
    other = Verp("another-secret-that-is-long-enough-111", DOMAIN)
    assert "bad signature" in _refused(other.address(VerpKind.BOUNCE, 1234))


@given(st.text(max_size=120))
def test_no_made_up_local_part_is_admitted(local: str) -> None:
    address = f"{local}@{DOMAIN}"
    try:
        admitted = GATE.admit(address)
    except Refused:
        return
    # Only the mailboxes (or, by a 2^-65 chance, a correct token) get through.
    assert admitted.kind is None and local.strip().lower() in {"postmaster", "abuse"}


@given(st.integers(min_value=1, max_value=MAX_ROW_ID), st.sampled_from(list(VerpKind)))
def test_every_signed_address_is_admitted_and_names_its_kind(
    delivery_id: int, kind: VerpKind
) -> None:
    assert GATE.admit(VERP.address(kind, delivery_id)).kind is kind


def test_the_gate_needs_a_bounce_domain(settings: Settings) -> None:
    assert settings.inbound.domain == ""
    with pytest.raises(ConfigError, match=r"\[inbound\] domain is empty"):
        Gate.from_settings(settings)
    inbound = settings.inbound.model_copy(update={"domain": DOMAIN, "mailboxes": ["Postmaster"]})
    gate = Gate.from_settings(settings.model_copy(update={"inbound": inbound}))
    assert gate.domain == DOMAIN and gate.mailboxes == frozenset({"postmaster"})
    address = Verp(settings.web.secret_key, DOMAIN).address(VerpKind.BOUNCE, 7)
    assert gate.admit(address).kind is VerpKind.BOUNCE
