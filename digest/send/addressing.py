"""The addresses that name one delivery: envelope sender, mailto unsubscribe and Message-ID."""

from __future__ import annotations

from dataclasses import dataclass

from digest.config import SenderSettings, Settings
from digest.send.addresses import ascii_domain
from digest.send.mime import make_message_id
from digest.tracking.verp import Verp, VerpKind


@dataclass(frozen=True, slots=True)
class Addressed:
    """One delivery's addresses: MAIL FROM, the List-Unsubscribe mailto, the Message-ID."""

    envelope_sender: str
    unsubscribe_mailto: str
    message_id: str


@dataclass(frozen=True)
class DeliveryAddresses:
    """Makes each delivery's addresses; built once per run (one HMAC key derivation).

    With a bounce domain (`[inbound] domain`) the envelope sender is `b-TOKEN@domain` and
    the mailto `u-TOKEN@domain?subject=unsubscribe`, both naming the delivery. Without one,
    the envelope sender is `sender.from_address` and the mailto the unsubscribe address
    with the link token in its subject, as before. Either way the Message-ID starts with the
    delivery's b- token, so a bounce whose envelope address was rewritten still names it
    in the headers it returns.
    """

    verp: Verp
    sender: SenderSettings
    bounce_domain: str = ""  # empty: no VERP envelope sender nor u- mailto

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryAddresses:
        domain = settings.inbound.domain
        verp = Verp(settings.web.secret_key, domain or settings.sender.list_id_domain)
        return cls(verp, settings.sender, ascii_domain(domain) if domain else "")

    @classmethod
    def without_bounce_domain(cls, sender: SenderSettings, secret_key: str) -> DeliveryAddresses:
        return cls(Verp(secret_key, sender.list_id_domain), sender)

    def of(self, delivery_id: int, unsubscribe_token: str) -> Addressed:
        """The addresses of delivery `delivery_id`; `unsubscribe_token` is its link token
        (the mailto's subject when there is no bounce domain)."""
        bounce = self.verp.token(VerpKind.BOUNCE, delivery_id)
        message_id = make_message_id(self.sender.list_id_domain, prefix=bounce)
        if not self.bounce_domain:
            return Addressed(
                self.sender.from_address, self._plain_mailto(unsubscribe_token), message_id
            )
        unsubscribe = self.verp.token(VerpKind.UNSUBSCRIBE, delivery_id)
        return Addressed(
            f"{bounce}@{self.bounce_domain}",
            f"mailto:{unsubscribe}@{self.bounce_domain}?subject=unsubscribe",
            message_id,
        )

    def _plain_mailto(self, token: str) -> str:
        sender = self.sender
        address = sender.unsubscribe_address or f"unsubscribe@{sender.list_id_domain}"
        return f"mailto:{address}?subject=unsubscribe%20{token}"
