"""Who the bounce domain's MX takes mail for: signed `b-`/`u-` addresses and the configured
mailboxes (postmaster, abuse) on `[inbound] domain`, nobody else (never an open relay)."""

from __future__ import annotations

from dataclasses import dataclass

from digest.config import Settings
from digest.errors import ConfigError
from digest.tracking.verp import BadVerp, Verp, VerpKind

# RFC 5321 4.5.1: `RCPT TO:<Postmaster>` without a domain must be accepted.
_BARE_POSTMASTER = "postmaster"
_MAX_ADDRESS = 320  # RFC 3696's longest address; anything longer is nobody we know


@dataclass(frozen=True, slots=True)
class Admitted:
    """An accepted recipient: a VERP address (kind set) or one of the mailboxes."""

    address: str
    kind: VerpKind | None  # None: postmaster, abuse or another configured mailbox


class Refused(Exception):
    """A recipient the server does not take mail for; `why` goes to the log, not the client."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class Gate:
    """Decides each RCPT TO: a correctly signed token or a configured mailbox at our domain."""

    verp: Verp
    mailboxes: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Gate:
        domain = settings.inbound.domain
        if not domain:
            raise ConfigError(
                "[inbound] domain is empty: `digest inbound` is the bounce domain's MX and "
                "takes mail only for it; set inbound.domain (e.g. bounces.example.org, with an "
                "MX record pointing at this host)"
            )
        mailboxes = frozenset(box.strip().lower() for box in settings.inbound.mailboxes)
        return cls(Verp(settings.web.secret_key, domain), mailboxes - {""})

    @property
    def domain(self) -> str:
        return self.verp.domain

    def admit(self, address: str) -> Admitted:
        """The recipient if we take mail for it; Refused (with the reason) otherwise."""
        if len(address) > _MAX_ADDRESS:
            raise Refused(f"address longer than {_MAX_ADDRESS} characters")
        bare = address.strip().strip("<>").strip()
        local, at, domain = bare.rpartition("@")
        if not at:
            if bare.lower() == _BARE_POSTMASTER:
                return Admitted(bare, None)
            raise Refused("no domain")
        if domain.lower().rstrip(".") != self.domain:
            raise Refused("not the bounce domain (relaying denied)")
        if local.lower() in self.mailboxes:
            return Admitted(bare, None)
        try:
            ref = self.verp.check_address(bare)
        except BadVerp as exc:
            raise Refused(exc.why) from None
        return Admitted(bare, ref.kind)
