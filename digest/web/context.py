"""What every route shares: settings, engine, signer, pages, the event writer; request helpers,
and the opening of every signed-link route (token -> subscription -> form token)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Path, Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.formparsers import MultiPartException

from digest.clock import utcnow
from digest.config import Settings
from digest.db.engine import session_scope
from digest.db.models import EventKind
from digest.errors import DigestError, NotFound
from digest.render.renderer import Renderer, RenderOptions
from digest.send.outcome import Sender
from digest.tracking.tokens import MAX_ROW_ID, BadToken, Purpose, Signer
from digest.web.clients import ClientAddress
from digest.web.events import EventWriter, PendingEvent
from digest.web.pages import Pages
from digest.web.ratelimit import RateLimiter
from subscribers.consent import Membership, membership

USER_AGENT_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
T = TypeVar("T")


class FormExpired(DigestError):
    """The form was shown too long ago (or its token is not ours): show it again."""


class BadForm(DigestError):
    """The request body is not a form we can read."""


@dataclass
class WebContext:
    """Built once by `create_app`; routes reach it through the `Web` dependency."""

    settings: Settings
    engine: Engine
    events: EventWriter
    pages: Pages
    limiter: RateLimiter
    sender_factory: Callable[[], Sender]
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # tests record the waits
    signer: Signer = field(init=False)
    forms: FormTokens = field(init=False)
    clients: ClientAddress = field(init=False)

    def __post_init__(self) -> None:
        self.signer = Signer(self.settings.web.secret_key)
        self.clients = ClientAddress(self.settings.web.trusted_proxies)
        self.forms = FormTokens(
            self.settings.web.secret_key, self.settings.web.form_max_age_hours * 3600
        )

    @cached_property
    def renderer(self) -> Renderer:
        """The email renderer (built on first use: only view-in-browser and confirmations)."""
        return Renderer(RenderOptions.from_settings(self.settings))

    def ids(self, purpose: Purpose, token: str) -> tuple[int, int]:
        """(subscriber id, list id) from a signed token; BadToken for anything else."""
        ids = self.signer.loads(purpose, token)
        if len(ids) != 2:
            raise BadToken()
        return ids[0], ids[1]

    def record_unsubscribe(self, request: Request, subscriber_id: int, list_id: int) -> None:
        """Queue the event of a subscriber leaving a list, from this request."""
        self.events.record(
            PendingEvent(
                EventKind.UNSUBSCRIBE,
                self.clock(),
                subscriber_id=subscriber_id,
                list_id=list_id,
                user_agent=user_agent(request),
                ip=client_ip(request),
            )
        )


@dataclass(frozen=True)
class Linked(Generic[T]):
    """The subscription a signed link names, and what the route loaded for it."""

    subscriber_id: int
    list_id: int
    found: T


async def open_link(
    web: WebContext, purpose: Purpose, token: str, load: Callable[[WebContext, int, int], T]
) -> Linked[T] | Response:
    """The ids of `token` and `load(web, subscriber_id, list_id)` (run in a worker thread);
    the "invalid link" page for a token that is not ours or a subscription that is gone."""
    try:
        subscriber_id, list_id = web.ids(purpose, token)
        found = await run_in_threadpool(load, web, subscriber_id, list_id)
    except (BadToken, NotFound):
        return web.pages.problem("invalid_link")
    return Linked(subscriber_id, list_id, found)


async def checked_form(
    web: WebContext, request: Request, form: str, link: Linked[T]
) -> FormData | None:
    """The posted form when it carries a fresh token of form `form` for this subscription;
    None when the token is missing, stale or not for it (show the form again)."""
    posted = await read_form(request)
    try:
        web.forms.check(field_value(posted, "csrf"), form, link.subscriber_id, link.list_id)
    except FormExpired:
        return None
    return posted


def find_membership(web: WebContext, subscriber_id: int, list_id: int) -> Membership:
    """The subscriber, list and subscription of a link (a `load` for `open_link`)."""
    with session_scope(web.engine) as session:
        return membership(session, subscriber_id, list_id)


def get_web(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(get_web)]


class FormTokens:
    """Signed per-page form tokens (CSRF): they name the form and the subscription, and age.

    No cookie is needed: a POST must carry a token that only a page we rendered for that
    same subscription could have given, less than `max_age` seconds ago.
    """

    def __init__(self, secret_key: str, max_age: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="digest.csrf")
        self.max_age = max_age

    def make(self, form: str, subscriber_id: int, list_id: int) -> str:
        return self._serializer.dumps([form, subscriber_id, list_id])

    def check(self, token: str, form: str, subscriber_id: int, list_id: int) -> None:
        try:
            data = self._serializer.loads(token, max_age=int(self.max_age))
        except SignatureExpired:
            raise FormExpired("the form has expired") from None
        except (BadSignature, UnicodeError, ValueError):
            raise FormExpired("the form token is not valid") from None
        if data != [form, subscriber_id, list_id]:
            raise FormExpired("the form token belongs to another form")


async def read_form(request: Request) -> FormData:
    """The urlencoded or multipart body (no files, small fields); BadForm when unreadable."""
    try:
        return await request.form(max_files=0, max_fields=100, max_part_size=16_384)
    except (HTTPException, MultiPartException, UnicodeError, ValueError, AssertionError):
        raise BadForm("the request body is not a readable form") from None


def field_value(form: FormData, name: str) -> str:
    """One text field ("" when missing or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def user_agent(request: Request) -> str:
    """The User-Agent, without control characters and cut to what is stored."""
    return clean_agent(request.headers.get("user-agent", ""))


def clean_agent(raw: str) -> str:
    return _CONTROL.sub("", raw[: USER_AGENT_CHARS * 2])[:USER_AGENT_CHARS]


def client_ip(request: Request) -> str | None:
    """The client's address: the peer's, or a trusted proxy's X-Forwarded-For (clients.py)."""
    peer = request.client.host if request.client else None
    web: WebContext = request.app.state.web
    if not web.clients.enabled:
        return peer
    return web.clients.resolve(peer, request.headers.getlist("x-forwarded-for"))


def form_int(form: FormData, name: str, *, low: int = 1, high: int = MAX_ROW_ID) -> int | None:
    """An integer field within [low, high]; None when missing, not a number or out of range
    (a 20-digit id must be a clear refusal, never an overflow in the database)."""
    text = field_value(form, name).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if low <= value <= high else None


# A row id in a path: past the tables' keys it is a 404, never a database overflow.
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
