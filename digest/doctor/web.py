"""The web app's address: every link in an email starts with web.base_url, so it is https in
production, and what answers there is a live `digest serve` (its GET /healthz)."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from digest.config import Settings, is_loopback
from digest.doctor.report import Check

TIMEOUT_SECONDS = 5.0
HTTPS_FIX = "set web.base_url to the https:// address of the TLS proxy in front of digest serve"


def base_url_check(settings: Settings) -> Check:
    """https in production; http is a warning in development unless it is this machine."""
    name = "web base_url"
    url = settings.web.base_url
    if url.lower().startswith("https://"):
        return Check.ok(name, f"{url} is https")
    if settings.env == "production":
        return Check.fail(name, f"{url} is not https in production", HTTPS_FIX)
    if is_loopback(urlsplit(url).hostname or ""):
        return Check.ok(name, f"{url}: plain http on this machine, fine for development")
    return Check.warn(name, f"{url} is not https: readers' links would travel in clear", HTTPS_FIX)


def healthz_check(settings: Settings, transport: httpx.BaseTransport | None = None) -> Check:
    """GET base_url/healthz: `digest serve`'s own answer (200, `{"status": "ok"}`) is ok; no
    answer is a warning (the server may not be up yet); any other answer (an error, a
    redirect, another application's page), or a certificate readers' browsers would refuse,
    a failure."""
    name = "web healthz"
    url = f"{settings.web.base_url}/healthz"
    try:
        with httpx.Client(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport
        ) as client:
            response = client.get(url)
    except httpx.ConnectError as exc:
        if "certificate" in str(exc).lower() or "ssl" in str(exc).lower():
            return Check.fail(
                name, f"{url}: TLS failed ({exc})", "give the proxy a valid certificate for it"
            )
        return Check.warn(
            name,
            f"nothing answers at {url} ({exc})",
            "start `digest serve` (deploy/) and the proxy, then run doctor again",
        )
    except httpx.HTTPError as exc:
        return Check.warn(
            name,
            f"no answer from {url} ({type(exc).__name__})",
            "check that digest serve and the proxy are running and reachable",
        )
    if response.status_code == 200 and _is_ours(response):
        return Check.ok(name, f"{url} answers 200 (digest serve, database ok)")
    if response.status_code == 200:
        return Check.fail(
            name,
            f"{url} answers 200, but not as digest serve does",
            "point web.base_url and the proxy at `digest serve` (deploy/)",
        )
    return Check.fail(
        name,
        f"{url} answers {response.status_code}",
        "point the proxy at `digest serve` (deploy/), and read the log of digest serve",
    )


def _is_ours(response: httpx.Response) -> bool:
    """digest serve's /healthz body: {"status": "ok", "database": "ok"}."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok" and body.get("database") == "ok"
