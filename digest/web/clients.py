"""Who the client is: the connecting address, or what a trusted proxy says it forwarded for.

Only `[web] trusted_proxies` decides: X-Forwarded-For from any other peer (loopback included)
is ignored, so nobody can pick the address the rate limits count them under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

_HOPS = 20  # hops read from X-Forwarded-For, from the right


class ClientAddress:
    """Resolves a request's client address from its peer and X-Forwarded-For values."""

    def __init__(self, trusted: Sequence[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(t, strict=False) for t in trusted)

    @property
    def enabled(self) -> bool:
        return bool(self._networks)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def resolve(self, peer: str | None, forwarded: Iterable[str]) -> str | None:
        """The peer, unless it is a trusted proxy: then the rightmost forwarded address that
        is not one (what the proxy saw); the peer when the header is missing or malformed."""
        if peer is None or not self._networks or not self.trusts(peer):
            return peer
        hops = [h.strip() for value in forwarded for h in value.split(",")][-_HOPS:]
        for hop in reversed(hops):
            try:
                host = str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage: whoever wrote it is not a proxy we trust
            if not self.trusts(host):
                return host
        return peer
