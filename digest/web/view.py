"""View in browser `GET /v/{token}`: the subscriber's digest as it was sent."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from digest.errors import NotFound
from digest.preview.delivery import render_delivery
from digest.tracking.tokens import BadToken, Purpose
from digest.web.context import Web

router = APIRouter()
# The digest shows the publisher's images; it runs no script and posts no form.
VIEW_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


@router.get("/v/{token}", include_in_schema=False)
async def view(token: str, web: Web) -> Response:
    try:
        ids = web.signer.loads(Purpose.VIEW, token)
        if len(ids) != 1:
            raise BadToken()
        rendered = await run_in_threadpool(
            partial(render_delivery, now=web.clock()), web.engine, web.renderer, web.signer, ids[0]
        )
    except (BadToken, NotFound):
        return web.pages.problem("invalid_link")
    return HTMLResponse(rendered.html, headers=VIEW_HEADERS)
