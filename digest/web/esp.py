"""Providers' event webhooks: POST /esp/ses, /esp/postmark, /esp/sendgrid, /esp/mailgun.

Thin: the raw body (capped), the provider's check and mapping (digest/inbound/esp, in a
worker thread: SES may fetch SNS's certificate), then the inbound policy in one
transaction. A provider without its secret in `[inbound.esp]` is a 404. Refusals answer
401/403/400/413 and record nothing; a busy database answers 503 with Retry-After, so
that the provider sends the events again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from digest.inbound.esp.hooks import Webhooks
from digest.inbound.esp.payload import MAX_PAYLOAD_BYTES, Refused, TooLarge
from digest.inbound.esp.sns import Fetch
from digest.inbound.process import InboundUnavailable, Processor
from digest.inbound.verdicts import Received
from digest.web.context import Web, WebContext

log = logging.getLogger(__name__)
router = APIRouter()
RETRY_AFTER_SECONDS = 60


@dataclass
class EspState:
    """The app's webhooks (their certificate cache, Mailgun's tokens) and processor."""

    hooks: Webhooks
    processor: Processor

    @classmethod
    def build(cls, web: WebContext, *, fetch: Fetch | None = None) -> EspState:
        hooks = Webhooks.from_settings(web.settings.inbound.esp, fetch=fetch)
        return cls(hooks, Processor(web.engine, web.settings, clock=web.clock))


def esp_state(app: FastAPI, web: WebContext) -> EspState:
    """Built on the first webhook request (tests install their own first)."""
    state: EspState | None = getattr(app.state, "esp", None)
    if state is None:
        state = app.state.esp = EspState.build(web)
    return state


@router.post("/esp/{provider}", include_in_schema=False)
async def webhook(provider: str, request: Request, web: Web) -> Response:
    """ses, postmark, sendgrid or mailgun; 404 for a provider not configured (or unknown)."""
    return await _serve(request, web, provider)


async def _serve(request: Request, web: WebContext, provider: str) -> Response:
    state = esp_state(request.app, web)
    hook = state.hooks.get(provider)
    if hook is None:
        return web.pages.problem("not_found")
    try:
        raw = await _body(request)
        verdicts = await asyncio.to_thread(hook.handle, request.headers, raw, web.clock())
    except Refused as exc:
        log.warning("%s webhook refused (%d): %s", provider, exc.status, exc)
        return _refusal(exc, provider)
    if not verdicts:
        return JSONResponse({"events": 0, "duplicates": 0})
    items = [(Received(raw, hook.source), verdict) for verdict in verdicts]
    try:
        handled = await asyncio.to_thread(state.processor.apply, items)
    except InboundUnavailable as exc:
        log.warning("%s webhook: %s", provider, exc)
        return PlainTextResponse(
            "busy, send again later",
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    duplicates = sum(1 for one in handled if one.duplicate)
    return JSONResponse({"events": len(handled), "duplicates": duplicates})


async def _body(request: Request) -> bytes:
    """The raw body, refused (TooLarge) past MAX_PAYLOAD_BYTES before reading all of it."""
    length = request.headers.get("content-length", "")
    if length and (not length.isdigit() or int(length) > MAX_PAYLOAD_BYTES):
        raise TooLarge(f"payload over {MAX_PAYLOAD_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_PAYLOAD_BYTES:
            raise TooLarge(f"payload over {MAX_PAYLOAD_BYTES} bytes")
    return bytes(body)


def _refusal(exc: Refused, provider: str) -> Response:
    basic = exc.status == 401 and provider == "postmark"
    headers = {"WWW-Authenticate": 'Basic realm="digest"'} if basic else {}
    if exc.status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return PlainTextResponse(str(exc), status_code=exc.status, headers=headers)
