"""Signed tokens for every link a subscriber can follow (itsdangerous, one salt per purpose).

A token names ids, never an email address, and does not expire (an unsubscribe link must
work years later). The ids are in clear (they are sequential), so what protects a link is
its signature: without the secret key a token cannot be made or changed, whatever ids it
names. Verifying a forged or altered token raises `BadToken`; callers answer with one
generic message, the same as for an unknown subscriber.

A click token covers the pair (delivery, link): `{delivery}.{tag}.{link hash}`, the tag a
keyed BLAKE2s of both, so one reader's token cannot record a click on another digest's link.
Emails sent before carried `{delivery}.{signature of the delivery alone}.{link hash}`: those
still verify, as `ClickRef.bound = False`, for the web app to check the link itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature
from itsdangerous import Signer as HmacSigner
from itsdangerous.encoding import base64_encode

from digest.errors import DigestError


class Purpose(StrEnum):
    UNSUBSCRIBE = "unsubscribe"  # (subscriber id, list id)
    PREFERENCES = "preferences"  # (subscriber id, list id)
    CONFIRM = "confirm"  # (subscriber id, list id, nonce of the pending confirmation)
    VIEW = "view"  # (delivery id,)
    OPEN = "open"  # (delivery id,)
    CLICK = "click"  # (delivery id,) followed by the link's `.hash` suffix: before link tags
    CLICK_LINK = "click-link"  # the key of the tag over (delivery id, link hash)


class BadToken(DigestError):
    """The link is not valid (forged, altered or truncated)."""

    def __init__(self) -> None:
        super().__init__("this link is not valid")


_PAYLOAD = re.compile(r"[0-9]{1,18}(?:-[0-9]{1,18}){0,3}")
# Every id is a row id: the tables' INTEGER keys stop here (PostgreSQL's int4).
MAX_ROW_ID = 2**31 - 1
TAG_BYTES = 12  # a click tag: 96 bits, 16 characters in the URL
_TAG_CHARS = 16


@dataclass(frozen=True, slots=True)
class ClickRef:
    """A verified click token: its delivery, the link hash, and whether the token's
    signature covers that hash (False: a token of an email sent before link tags)."""

    delivery_id: int
    link_hash: str
    bound: bool


@dataclass(frozen=True)
class Signer:
    """Makes and checks tokens with the web secret key: `ids-joined-by-dash.signature`.

    itsdangerous' Signer (HMAC-SHA1, key derived per purpose) over a compact payload: ~5 µs a
    token, where its JSON serializer costs ~110 µs — too slow for 100,000 messages. `dumps`
    makes the same bytes as `HmacSigner.sign` from a keyed HMAC copied per token: `sign`
    derives the key again (a SHA-1) and keys a new HMAC every time, 5 tokens per message.
    """

    secret_key: str
    _signers: dict[Purpose, HmacSigner] = field(default_factory=dict, compare=False, repr=False)
    _macs: dict[Purpose, hmac.HMAC] = field(default_factory=dict, compare=False, repr=False)
    _keyed: dict[Purpose, Any] = field(default_factory=dict, compare=False, repr=False)

    def _signer(self, purpose: Purpose) -> HmacSigner:
        signer = self._signers.get(purpose)
        if signer is None:
            signer = HmacSigner(self.secret_key, salt=f"digest.{purpose.value}")
            self._signers[purpose] = signer
        return signer

    def _mac(self, purpose: Purpose) -> hmac.HMAC:
        mac = self._macs.get(purpose)
        if mac is None:
            signer = self._signer(purpose)
            mac = hmac.new(signer.derive_key(), digestmod=signer.digest_method)
            self._macs[purpose] = mac
        return mac

    def dumps(self, purpose: Purpose, *ids: int) -> str:
        payload = "-".join(str(i) for i in ids).encode("ascii")
        mac = self._mac(purpose).copy()
        mac.update(payload)
        return (payload + b"." + base64_encode(mac.digest())).decode("ascii")

    def loads(self, purpose: Purpose, token: str) -> tuple[int, ...]:
        try:
            payload = self._signer(purpose).unsign(token).decode("ascii")
        except (BadSignature, UnicodeError):
            raise BadToken() from None
        if not _PAYLOAD.fullmatch(payload):
            raise BadToken()
        return tuple(_row_id(int(part)) for part in payload.split("-"))

    def click(self, delivery_id: int, link_hash: str) -> str:
        """`{delivery}.{tag}`: the click token of one link, the URL adds `.{link_hash}`.

        A keyed BLAKE2s (a MAC) copied from its keyed state, instead of an HMAC: a digest has
        ~20 links and each message signs them all; 12 bytes are 16 base64 characters, no
        padding to strip.
        """
        head = str(delivery_id)
        mac = self._link_mac().copy()
        mac.update(f"{head}.{link_hash}".encode())
        return f"{head}.{urlsafe_b64encode(mac.digest()).decode('ascii')}"

    def loads_click(self, token: str) -> ClickRef:
        """The delivery and link of a click token `{delivery}.{tag or signature}.{hash}`."""
        if not token.isascii():  # every token we sign is ASCII (compare_digest refuses others)
            raise BadToken()
        signed, dot, link = token.rpartition(".")
        payload, _, mac = signed.partition(".")
        if not dot or not link or not _PAYLOAD.fullmatch(payload) or "-" in payload:
            raise BadToken()
        if len(mac) == _TAG_CHARS:
            if not hmac.compare_digest(self.click(int(payload), link), signed):
                raise BadToken()
            return ClickRef(_row_id(int(payload)), link, bound=True)
        (delivery_id,) = self.loads(Purpose.CLICK, signed)
        return ClickRef(delivery_id, link, bound=False)

    def _link_mac(self) -> Any:
        mac = self._keyed.get(Purpose.CLICK_LINK)
        if mac is None:
            key = self._signer(Purpose.CLICK_LINK).derive_key()
            mac = self._keyed[Purpose.CLICK_LINK] = hashlib.blake2s(key=key, digest_size=TAG_BYTES)
        return mac


def _row_id(value: int) -> int:
    if not 0 < value <= MAX_ROW_ID:
        raise BadToken()
    return value


@dataclass(frozen=True, slots=True)
class ClickTokens:
    """The click tokens of one message: `tokens(link_hash)` for each of its links."""

    signer: Signer
    delivery_id: int

    def __call__(self, link_hash: str) -> str:
        return self.signer.click(self.delivery_id, link_hash)


@dataclass(frozen=True)
class RecipientTokens:
    """The tokens of one message."""

    unsubscribe: str
    preferences: str
    view: str
    open: str
    click: ClickTokens


def tokens_for(
    signer: Signer, *, subscriber_id: int, list_id: int, delivery_id: int
) -> RecipientTokens:
    return RecipientTokens(
        unsubscribe=signer.dumps(Purpose.UNSUBSCRIBE, subscriber_id, list_id),
        preferences=signer.dumps(Purpose.PREFERENCES, subscriber_id, list_id),
        view=signer.dumps(Purpose.VIEW, delivery_id),
        open=signer.dumps(Purpose.OPEN, delivery_id),
        click=ClickTokens(signer, delivery_id),
    )
