"""Email normalisation: the fast path never accepts what email-validator refuses."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import InvalidInput
from subscribers.validate import (
    check_hour,
    check_timezone,
    email_key,
    normalize_address,
    normalize_email,
    parse_hour,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Reem@Example.ORG", "Reem@example.org"),
        ("  omar+news@mail.example.co.uk ", "omar+news@mail.example.co.uk"),
    ],
)
def test_domain_case_is_normalised_local_part_kept(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plain",
        "a@b",
        "a..b@example.org",
        ".a@example.org",
        "a@example.test",
        "a@localhost",
        "a@-x.org",
        "a@x.123",
        "a b@example.org",
        "a@example..org",
    ],
)
def test_invalid_addresses(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_email(raw)


ATOMS = st.text(alphabet="abcXYZ09.-_+'!@`~", min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(
    local=ATOMS,
    domain=st.lists(st.text(alphabet="abZ09-", min_size=1, max_size=8), min_size=1, max_size=3),
    tld=st.sampled_from(["org", "COM", "test", "x1", "1x", "local", "xn--abc"]),
)
def test_fast_path_agrees_with_email_validator(local: str, domain: list[str], tld: str) -> None:
    address = f"{local}@{'.'.join([*domain, tld])}"
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        ours: str | None = normalize_email(address)
    except InvalidInput:
        ours = None
    assert ours == expected


def test_timezone_and_hour() -> None:
    assert check_timezone("America/New_York") == "America/New_York"
    with pytest.raises(InvalidInput, match="unknown timezone"):
        check_timezone("Riyadh")
    assert parse_hour(" 7 ") == 7
    with pytest.raises(InvalidInput):
        parse_hour("seven")
    with pytest.raises(InvalidInput):
        check_hour(-1)


# Item 19: internationalised addresses.


@pytest.mark.parametrize(
    ("raw", "stored", "key"),
    [
        ("user@bücher.de", "user@bücher.de", "user@xn--bcher-kva.de"),
        ("User@XN--BCHER-KVA.DE", "User@bücher.de", "user@xn--bcher-kva.de"),
        ("user@BÜCHER.de", "user@bücher.de", "user@xn--bcher-kva.de"),
        ("a@مثال.السعودية", "a@مثال.السعودية", "a@xn--mgbh0fb.xn--mgberp4a5d4ar"),
        ("A@xn--mgbh0fb.xn--mgberp4a5d4ar", "A@مثال.السعودية", "a@xn--mgbh0fb.xn--mgberp4a5d4ar"),
    ],
)
def test_idn_domains_are_accepted_and_keyed_in_punycode(raw: str, stored: str, key: str) -> None:
    # Scenario: `user@bücher.de` and its punycode spelling are one address; the domain is
    # stored in its Unicode form, the key (what every lookup matches) in punycode.
    assert normalize_address(raw) == (stored, key)
    assert email_key(stored) == key
    assert email_key(raw) == key


def test_non_ascii_local_parts_are_refused_unless_allowed() -> None:
    # Scenario: `علي@example.org` was accepted and then never sent: refused at input, with a
    # message saying why, unless the relay takes SMTPUTF8 mail (setting).
    with pytest.raises(InvalidInput, match="part before '@' has non-ASCII characters"):
        normalize_email("علي@example.org")
    assert normalize_email("علي@Example.org", smtputf8=True) == "علي@example.org"
    assert email_key("Ünal@example.org") == email_key("ünal@EXAMPLE.org") == "ünal@example.org"


CASES = st.sampled_from(
    ["Reem.Ali+news@Example.ORG", "user@bücher.de", "omar@xn--mgbh0fb.xn--mgberp4a5d4ar"]
)


@settings(max_examples=200, deadline=None)
@given(address=CASES, flips=st.lists(st.booleans(), min_size=40, max_size=40))
def test_every_case_variant_has_the_same_key(address: str, flips: list[bool]) -> None:
    variant = "".join(
        c.swapcase() if flip else c for c, flip in zip(address, flips * 2, strict=False)
    )
    assert normalize_address(variant)[1] == normalize_address(address)[1]


@settings(max_examples=500, deadline=None)
@given(raw=st.text(max_size=80) | st.builds("{}@{}".format, st.text(max_size=20), st.text()))
def test_any_text_is_an_address_or_invalid_input(raw: str) -> None:
    # Never another exception (a 500 on /subscribe): InvalidInput or an address with a key.
    for smtputf8 in (False, True):
        try:
            address, key = normalize_address(raw, smtputf8=smtputf8)
        except InvalidInput:
            continue
        assert email_key(address) == key
