"""Open pixel `GET /o/{token}.gif` and click redirect `GET /c/{token}.{hash}`.

The pixel is always answered, whatever happens to the recording. A click redirects only to
the URL stored under the link hash that the token ends with, and only when the token's
signature holds: anything else is a 400 page, never a redirect (no open redirect).
"""

from __future__ import annotations

import base64
from collections import OrderedDict

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine, select
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.db.models import EventKind
from digest.db.tables import LINK
from digest.render.data import web_url
from digest.tracking.machines import classify
from digest.tracking.tokens import BadToken, Purpose
from digest.web.context import Web, WebContext, clean_agent, client_ip, user_agent
from digest.web.events import PendingEvent

router = APIRouter()

# A transparent 1x1 GIF (43 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
PIXEL_HEADERS = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
_LINK_CACHE = 10_000


class PixelFastPath:
    """`GET|HEAD /o/{token}.gif`, answered before the framework's routing and dependencies.

    The pixel is by far the most requested URL (every open of every message, and the
    proxies' prefetches), and all it does is check an HMAC and queue an event: skipping
    FastAPI's per-request machinery triples its throughput (bench/web_bench.py).
    """

    def __init__(self, app: ASGIApp, web: WebContext) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (
            path.startswith("/o/")
            and path.endswith(".gif")
            and scope["method"] in ("GET", "HEAD")
            and "/" not in path[3:]
        ):
            agent = ""
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    agent = value.decode("latin-1")
                    break
            client = scope.get("client")
            record_open(self.web, path[3:-4], agent, scope["method"], client[0] if client else None)
            await send(_PIXEL_START)
            await send(_PIXEL_BODY if scope["method"] == "GET" else _EMPTY_BODY)
            return
        await self.app(scope, receive, send)


def record_open(web: WebContext, token: str, agent: str, method: str, ip: str | None) -> None:
    """Queue the open of a pixel fetch; a bad token (or anything else) records nothing."""
    try:
        (delivery_id,) = web.signer.loads(Purpose.OPEN, token)
    except (BadToken, ValueError):
        return  # a bad token still gets its image: mail clients show a broken icon otherwise
    agent = clean_agent(agent)
    verdict = classify(agent, method=method)
    web.events.record(
        PendingEvent(
            EventKind.OPEN,
            web.clock(),
            delivery_id=delivery_id,
            machine=verdict.machine,
            machine_reason=verdict.reason,
            user_agent=agent,
            ip=ip,
        )
    )


_PIXEL_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"image/gif"),
        (b"content-length", str(len(PIXEL)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in PIXEL_HEADERS.items()),
    ],
}
_PIXEL_BODY = {"type": "http.response.body", "body": PIXEL}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}


@router.api_route("/c/{token}", methods=["GET", "HEAD"], include_in_schema=False)
async def click(token: str, request: Request, web: Web) -> Response:
    try:
        delivery_id, link_hash = web.signer.loads_click(token)
    except (BadToken, ValueError):
        return web.pages.problem("invalid_link")
    links: LinkCache = request.app.state.links
    url = await links.get(link_hash)
    if url is None:
        return web.pages.problem("invalid_link")
    agent = user_agent(request)
    verdict = classify(agent, method=request.method)
    web.events.record(
        PendingEvent(
            EventKind.CLICK,
            web.clock(),
            delivery_id=delivery_id,
            link_hash=link_hash,
            machine=verdict.machine,
            machine_reason=verdict.reason,
            user_agent=agent,
            ip=client_ip(request),
        )
    )
    return RedirectResponse(
        url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


class LinkCache:
    """Link hash -> destination URL, from the `link` table (hashes never change meaning)."""

    def __init__(self, engine: Engine, size: int = _LINK_CACHE) -> None:
        self.engine = engine
        self.size = size
        self._urls: OrderedDict[str, str] = OrderedDict()

    async def get(self, link_hash: str) -> str | None:
        """The http(s) URL stored under `link_hash`, or None."""
        if len(link_hash) > 32:
            return None
        url = self._urls.get(link_hash)
        if url is None:
            url = await to_thread.run_sync(self._load, link_hash)
            if url is None:
                return None
            self._urls[link_hash] = url
            if len(self._urls) > self.size:
                self._urls.popitem(last=False)
        return url

    def _load(self, link_hash: str) -> str | None:
        with self.engine.connect() as connection:
            url = connection.execute(select(LINK.c.url).where(LINK.c.hash == link_hash)).scalar()
        return web_url(url) if isinstance(url, str) else None
