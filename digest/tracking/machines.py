"""Machine or person: classify an open or a click from its request, with the reason.

Apple Mail Privacy Protection fetches every image through proxies whose user agent is a
bare `Mozilla/5.0`; Gmail announces `GoogleImageProxy`; security gateways (Microsoft Safe
Links, Proofpoint, Mimecast, Barracuda, …) fetch every link and image within seconds of
delivery. None of these is a person reading, so they are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Verdict:
    machine: bool
    reason: str = ""  # empty for a person


HUMAN = Verdict(False)

# reason -> lower-case words of the user agent, tried in this order. Plain substring tests:
# one regex over all of them costs ~60 µs per request, these ~3 µs.
_AGENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("google_image_proxy", ("googleimageproxy", "ggpht.com")),
    ("yahoo_proxy", ("yahoomailproxy",)),
    ("safe_links", ("bingpreview", "microsoft office protocol discovery", "safelinks")),
    ("proofpoint", ("proofpoint", "ppops")),
    ("mimecast", ("mimecast",)),
    ("barracuda", ("barracuda",)),
    (
        "scanner",
        (
            "symantec", "messagelabs", "trendmicro", "trend micro", "forcepoint", "ironport",
            "cisco", "sophos", "zscaler", "fortinet", "fortiguard", "checkpoint", "check point",
            "trustwave", "spamtitan", "vade secure", "vadesecure", "hornetsecurity", "cloudmark",
        ),
    ),
    (
        "bot",
        (
            "bot/", "bot;", "bot)", "bot ", "robot", "crawler", "spider", "preview",
            "headlesschrome", "phantomjs", "slurp", "facebookexternalhit",
        ),
    ),
)  # fmt: skip
_LIBRARIES = (
    "curl",
    "wget",
    "python",
    "go-http-client",
    "java/",
    "okhttp",
    "libwww",
    "aiohttp",
    "httpx",
)


def classify(
    user_agent: str,
    *,
    method: str = "GET",
    delivered_at: datetime | None = None,
    at: datetime | None = None,
    machine_seconds: float = 10.0,
) -> Verdict:
    """Who fetched the pixel or followed the link: a person, or a machine and which kind."""
    agent = user_agent.strip()
    if method.upper() == "HEAD":
        return Verdict(True, "head_request")
    if agent == "Mozilla/5.0":
        return Verdict(True, "apple_mpp")
    if not agent:
        return Verdict(True, "no_user_agent")
    lowered = agent.lower()
    for reason, words in _AGENTS:
        for word in words:
            if word in lowered:
                return Verdict(True, reason)
    if lowered.startswith(_LIBRARIES):
        return Verdict(True, "http_library")
    if lowered.endswith("bot"):
        return Verdict(True, "bot")
    return too_soon(delivered_at, at, machine_seconds) or HUMAN


def too_soon(
    delivered_at: datetime | None, at: datetime | None, machine_seconds: float
) -> Verdict | None:
    """A fetch within `machine_seconds` of delivery: a gateway scanning mail as it arrives."""
    if delivered_at is None or at is None:
        return None
    window = timedelta(seconds=machine_seconds)
    # Slightly negative too: a scanner can fetch before our own clock records the delivery.
    if -window <= at - delivered_at <= window:
        return Verdict(True, "right_after_delivery")
    return None
