"""VERP addresses: `b-TOKEN@bounce-domain` (a digest's envelope sender) and `u-TOKEN@…` (its
mailto unsubscribe) each name one delivery, so a bounce or an unsubscribe mail says which
subscriber, list and edition it is about, even when the bounce itself says nothing useful.

A token is `{delivery id in base 36}-{13 base-32 characters of HMAC-SHA256}`: 65 bits of
signature over the kind and the id, so nobody can make one for a delivery they were not sent.
Everything is lower case: mail servers may change the case of a local part, so parsing folds
it first. The same token also starts each digest's Message-ID (`<b-…​.RANDOM@domain>`), which
the returned headers of a bounce usually carry when the envelope address was rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from base64 import b32encode
from dataclasses import dataclass, field
from enum import StrEnum

from digest.tracking.tokens import MAX_ROW_ID, BadToken

_MAC_CHARS = 13
# Distinct look-alike tokens checked in one text at most: a real bounce holds a handful
# (envelope, Return-Path, Message-ID, List-Unsubscribe); each check is an HMAC.
MAX_CANDIDATES = 32
_ALPHABET36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN = re.compile(r"(?<![0-9a-z])([bu])-([0-9a-z]{1,7})-([a-z2-7]{13})(?![0-9a-z])")


class VerpKind(StrEnum):
    BOUNCE = "b"  # the envelope sender (Return-Path) of a digest
    UNSUBSCRIBE = "u"  # the mailto: List-Unsubscribe address of a digest


@dataclass(frozen=True, slots=True)
class VerpRef:
    """A verified token: what kind of address it was, and the delivery it names."""

    kind: VerpKind
    delivery_id: int


class BadVerp(BadToken):
    """Not one of our addresses, or a forged, altered or truncated one; `why` says which."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def __str__(self) -> str:
        return self.why


def _base36(value: int) -> str:
    digits = []
    while value:
        value, rest = divmod(value, 36)
        digits.append(_ALPHABET36[rest])
    return "".join(reversed(digits)) or "0"


@dataclass(frozen=True)
class Verp:
    """Makes and checks VERP addresses on `domain` with a key derived from the web secret."""

    secret_key: str
    domain: str
    _key: bytes = field(init=False, repr=False, compare=False)
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = hmac.new(self.secret_key.encode(), b"digest.verp", hashlib.sha256).digest()
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_keyed", hmac.new(key, digestmod=hashlib.sha256))
        object.__setattr__(self, "domain", self.domain.lower().rstrip("."))

    def _mac(self, kind: VerpKind, delivery_id: int) -> str:
        # 13 base-32 characters need only the first 10 bytes: the same characters as
        # encoding all 32, at a third of the cost (b32encode is pure Python), once a message.
        # A keyed copy, not hmac.digest: that one-shot call releases the GIL, and beside a
        # busy thread (the recorder) taking it back cost up to a switch interval (5 ms).
        mac = self._keyed.copy()
        mac.update(f"{kind.value}:{delivery_id}".encode())
        digest = mac.digest()
        return b32encode(digest[:10]).decode("ascii")[:_MAC_CHARS].lower()

    def token(self, kind: VerpKind, delivery_id: int) -> str:
        """The local part: `b-1f3-abcdefghijk23`."""
        if not 0 < delivery_id <= MAX_ROW_ID:
            raise ValueError(f"not a delivery id: {delivery_id}")
        return f"{kind.value}-{_base36(delivery_id)}-{self._mac(kind, delivery_id)}"

    def address(self, kind: VerpKind, delivery_id: int) -> str:
        return f"{self.token(kind, delivery_id)}@{self.domain}"

    def check_token(self, local_part: str) -> VerpRef:
        """The delivery a local part names; BadVerp (with the reason) when it names none."""
        local = local_part.strip().lower()
        found = _TOKEN.fullmatch(local)
        if found is None:
            raise BadVerp(f"not a b-/u- token: {local[:80]!r}")
        kind, id36, mac = found.groups()
        delivery_id = int(id36, 36)
        if not 0 < delivery_id <= MAX_ROW_ID:
            raise BadVerp(f"token names no delivery: {local!r}")
        if not hmac.compare_digest(self._mac(VerpKind(kind), delivery_id), mac):
            raise BadVerp(f"bad signature: {local!r}")
        return VerpRef(VerpKind(kind), delivery_id)

    def check_address(self, address: str) -> VerpRef:
        """As `check_token`, for a whole address on our bounce domain (any case)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at:
            raise BadVerp(f"not an address: {address[:80]!r}")
        if domain.lower().rstrip(".") != self.domain:
            raise BadVerp(f"not the bounce domain {self.domain}: {address[:80]!r}")
        return self.check_token(local)

    def find(self, text: str, kind: VerpKind | None = None) -> VerpRef | None:
        """The first correctly signed token anywhere in `text` (returned headers, a rewritten
        recipient such as `SRS0=…=b-…`); forged look-alikes are skipped."""
        tried: set[str] = set()
        for found in _TOKEN.finditer(text.lower()):
            token = found.group(0)
            if token in tried:
                continue
            if len(tried) == MAX_CANDIDATES:  # a message stuffed with look-alikes: stop
                return None
            tried.add(token)
            try:
                ref = self.check_token(token)
            except BadVerp:
                continue
            if kind is None or ref.kind is kind:
                return ref
        return None
