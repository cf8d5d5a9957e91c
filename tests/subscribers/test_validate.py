"""Email normalisation: the fast path never accepts what email-validator refuses."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import InvalidInput
from subscribers.validate import check_hour, check_timezone, normalize_email, parse_hour


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Reem@Example.ORG", "Reem@example.org"),
        ("  omar+news@mail.example.co.uk ", "omar+news@mail.example.co.uk"),
        ("علي@example.org", "علي@example.org"),
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
