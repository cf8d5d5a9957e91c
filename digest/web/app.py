"""The subscriber web app: `create_app(settings, engine)`, and `serve` for `digest serve`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.clock import utcnow
from digest.config import Settings
from digest.render.loaders import override_dir
from digest.send.outcome import Sender
from digest.send.smtp import SmtpSender
from digest.web import (
    confirm,
    editions,
    editor_auth,
    esp,
    health,
    preferences,
    subscribe,
    tracking,
    unsubscribe,
    view,
)
from digest.web.background import Background
from digest.web.context import BadForm, WebContext
from digest.web.events import EventWriter
from digest.web.logs import redact, redact_logger
from digest.web.pages import Pages
from digest.web.ratelimit import RateLimiter

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The request body is over `web.max_body_bytes`."""


class BodyLimit:
    """Refuses bodies over `limit` bytes, by Content-Length up front or while streaming."""

    def __init__(self, app: ASGIApp, limit: int, too_large: Callable[[], Response]) -> None:
        self.app = app
        self.limit = limit
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Providers' webhooks cap their own, bigger payloads (digest/web/esp.py).
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD")
            or scope["path"].startswith("/esp/")
        ):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await self.too_large()(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    sender_factory: Callable[[], Sender] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The app over an engine at the current schema; events are flushed when it stops."""
    web = _context(settings, engine, sender_factory, clock)
    events, pages = web.events, web.pages

    background = Background(web)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await events.start()
        await background.start()  # queued confirmations, spooled unsubscribes (leftovers too)
        try:
            yield
        finally:
            await background.stop()
            await events.stop()  # SIGTERM: uvicorn stops serving, then every event is written

    app = FastAPI(
        title="digest",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # Starlette's redirect for a trailing slash is absolute, built from the Host header:
        # an open redirect to any domain. `/editor/` is a 404 instead.
        redirect_slashes=False,
    )
    app.state.web = web
    app.state.background = background
    app.state.links = tracking.LinkCache(engine)
    for module in (
        tracking,
        unsubscribe,
        preferences,
        confirm,
        view,
        subscribe,
        editor_auth,
        editions,
        esp,
        health,
    ):
        app.include_router(module.router)
    _problems(app, pages)
    app.add_middleware(
        BodyLimit,
        limit=settings.web.max_body_bytes,
        too_large=lambda: pages.problem("too_large"),
    )
    app.add_middleware(tracking.PixelFastPath, web=web)  # outermost: the hottest path
    return app


def _context(
    settings: Settings,
    engine: Engine,
    sender_factory: Callable[[], Sender] | None,
    clock: Callable[[], datetime],
) -> WebContext:
    """What every route shares: the event writer, the pages, the rate limiter, a sender."""
    web_settings = settings.web
    events = EventWriter(
        engine,
        flush_seconds=web_settings.event_flush_seconds,
        batch=web_settings.event_batch,
        max_pending=web_settings.event_max_pending,
        machine_seconds=web_settings.machine_seconds,
    )
    pages = Pages(
        brand=settings.brand,
        default_locale=settings.digest.locale,
        digits=settings.render.digits,
        templates_dir=override_dir(settings),
    )
    return WebContext(
        settings=settings,
        engine=engine,
        events=events,
        pages=pages,
        limiter=RateLimiter(web_settings.subscribe_rate, web_settings.subscribe_window_seconds),
        sender_factory=sender_factory or (lambda: SmtpSender(settings.smtp)),
        clock=clock,
    )


def _problems(app: FastAPI, pages: Pages) -> None:
    """Errors become a page in the default language with the right status, never a traceback."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 400
        problem = {404: "not_found", 405: "method", 413: "too_large"}.get(status, "bad_request")
        return pages.problem(problem)

    async def bad_request(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RequestValidationError) and _in_path(exc):
            return pages.problem("not_found")  # `/editor/editions/99999999999999999999`
        return pages.problem("bad_request")

    async def too_large(request: Request, exc: Exception) -> Response:
        return pages.problem("too_large")

    async def server_error(request: Request, exc: Exception) -> Response:
        # Paths and messages may hold tokens: only a short hash of each is logged.
        path = redact(request.url.path[:200]).encode("unicode_escape").decode("ascii")
        log.error("error serving %s: %s: %s", path, type(exc).__name__, redact(str(exc)[:300]))
        return pages.problem("error")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(BadForm, bad_request)
    app.add_exception_handler(BodyTooLarge, too_large)
    app.add_exception_handler(Exception, server_error)


def _in_path(exc: RequestValidationError) -> bool:
    errors = exc.errors()
    return bool(errors) and all(e.get("loc", ("",))[0] == "path" for e in errors)


def serve(settings: Settings, engine: Engine, *, host: str, port: int) -> None:
    """Run the app under uvicorn until SIGINT/SIGTERM (then flush events and stop).

    Refuses (ConfigError) a weak web.secret_key unless in development on loopback."""
    import uvicorn

    warning = settings.link_secret_warning(listen_host=host)
    if warning is not None:
        log.warning("%s", warning)
    uvicorn.Server(server_config(create_app(settings, engine), settings, host, port)).run()


def server_config(app: ASGIApp, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """uvicorn's settings for `app`: X-Forwarded-* believed only from `[web] trusted_proxies`
    (uvicorn's default believes loopback), tokens hashed in its logs."""
    import uvicorn

    trusted = list(settings.web.trusted_proxies)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=settings.web.access_log,
        lifespan="on",
        server_header=False,
        # No dictConfig of its own: its records reach the root's stdout handler, in
        # `[log] format` (digest/service/logs.py), like every other line of `digest serve`.
        log_config=None,
        log_level=settings.log.level,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    for name in ("uvicorn.access", "uvicorn.error"):  # after uvicorn configured its logging
        redact_logger(name)
    return config
