"""Open pixel `GET /o/{token}.gif` and click redirect `GET /c/{token}.{hash}`.

The pixel is always answered, whatever happens to the recording. A click redirects only to
the URL stored under the link hash that the token ends with, and only when the token's
signature holds: anything else is a 400 page, never a redirect (no open redirect). A click
is recorded when the token's tag covers that link; a token from an email sent before link
tags (signed over the delivery alone) still redirects, and is recorded only when the link
is one of that delivery's own (its articles, or the site link).
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
from digest.db.tables import ARTICLE, DELIVERY, LINK
from digest.render.compiled import default_link_suffix
from digest.render.data import web_url
from digest.tracking.machines import classify
from digest.tracking.tokens import BadToken, ClickRef, Purpose
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
_DIGEST_ARTICLES = 500  # more than any digest holds (digest.max_articles is at most 200)


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
            agent, forwarded = "", []
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    agent = value.decode("latin-1")
                elif name == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
            client = scope.get("client")
            ip = self.web.clients.resolve(client[0] if client else None, forwarded)
            record_open(self.web, path[3:-4], agent, scope["method"], ip)
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
        ref = web.signer.loads_click(token)
    except (BadToken, ValueError):
        return web.pages.problem("invalid_link")
    delivery_id, link_hash = ref.delivery_id, ref.link_hash
    links: LinkCache = request.app.state.links
    url = await links.get(link_hash)
    if url is None:
        return web.pages.problem("invalid_link")
    redirect = RedirectResponse(
        url,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
    if not ref.bound and not await to_thread.run_sync(_delivered_link, web, ref):
        return redirect  # the reader still gets there; a link of another digest counts nothing
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
    return redirect


def _delivered_link(web: WebContext, ref: ClickRef) -> bool:
    """Whether `ref.link_hash` is one of the links its delivery's digest held."""
    with web.engine.connect() as connection:
        ids = connection.execute(
            select(DELIVERY.c.article_ids).where(DELIVERY.c.id == ref.delivery_id)
        ).scalar()
        if not ids:
            return False
        ids = [i for i in ids if isinstance(i, int)][:_DIGEST_ARTICLES]
        urls = list(
            connection.execute(select(ARTICLE.c.url).where(ARTICLE.c.id.in_(ids))).scalars()
        )
    urls.append(web.renderer.options.site_url)
    return any(default_link_suffix(url).lstrip(".") == ref.link_hash for url in urls)


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
