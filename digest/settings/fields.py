"""Validated types of settings fields: hosts, DNS names, addresses, and the section base that
refuses control characters in every text value but secrets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo, field_validator

from digest.text.controls import control_problem
from digest.text.locators import address_problem, hostname_problem

# Values never checked for control characters (they are never shown nor put in a header).
SECRET_FIELDS = frozenset(
    {"password", "secret_key", "postmark_password", "mailgun_signing_key", "sendgrid_public_key"}
)


def check(problem: str | None) -> None:
    """Raise the problem a checker found, as pydantic expects (ValueError)."""
    if problem is not None:
        raise ValueError(problem)


def valid(problem: Callable[[str], str | None], *, optional: bool = False) -> AfterValidator:
    """A validator running `problem` on the value (an empty value passes when optional)."""

    def checked(value: str) -> str:
        if value or not optional:
            check(problem(value))
        return value

    return AfterValidator(checked)


# Every setting that names a host or an address is checked when the settings load.
Host = Annotated[str, valid(hostname_problem)]
DnsName = Annotated[str, valid(lambda v: hostname_problem(v, ip_allowed=False))]
Address = Annotated[str, valid(address_problem)]
OptionalAddress = Annotated[str, valid(address_problem, optional=True)]
OptionalDnsName = Annotated[
    str, valid(lambda v: hostname_problem(v, ip_allowed=False), optional=True)
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_controls(cls, value: Any, info: ValidationInfo) -> Any:
        # Settings end up in headers (From, List-Id, User-Agent) and links: a line break or
        # control character there is an injection; a bidi control disguises the value.
        if isinstance(value, str) and info.field_name not in SECRET_FIELDS:
            check(control_problem(value))
        return value
