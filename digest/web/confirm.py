"""Double opt-in `/confirm/{token}`: GET shows a button, the POST activates and records consent.

A GET (a link scanner, a prefetching mail client) never confirms anyone; the POST carries a
signed form token and stores the time, IP address, user agent and consent text version.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.db.models import EventKind
from digest.errors import NotFound
from digest.tracking.tokens import BadToken, Purpose
from digest.web.context import (
    FormExpired,
    Web,
    WebContext,
    client_ip,
    field_value,
    read_form,
    user_agent,
)
from digest.web.events import PendingEvent
from subscribers.consent import Confirmed, Membership, confirm, membership
from subscribers.models import SubscriptionStatus
from subscribers.people import Consent

router = APIRouter()
FORM = "confirm"


@router.get("/confirm/{token}", include_in_schema=False)
async def confirm_page(token: str, web: Web) -> Response:
    try:
        subscriber_id, list_id = web.ids(Purpose.CONFIRM, token)
        found = await run_in_threadpool(_find, web, subscriber_id, list_id)
    except (BadToken, NotFound):
        return web.pages.problem("invalid_link")
    status = found.subscription.status
    if status == SubscriptionStatus.UNSUBSCRIBED:
        return web.pages.problem("invalid_link", found.subscriber.locale)
    if status == SubscriptionStatus.ACTIVE:
        return _confirmed(web, found, already=True)
    return web.pages.render(
        "confirm",
        found.subscriber.locale,
        list_name=found.mailing_list.name,
        csrf=web.forms.make(FORM, subscriber_id, list_id),
        expired=False,
    )


@router.post("/confirm/{token}", include_in_schema=False)
async def confirm_post(token: str, request: Request, web: Web) -> Response:
    try:
        subscriber_id, list_id = web.ids(Purpose.CONFIRM, token)
        found = await run_in_threadpool(_find, web, subscriber_id, list_id)
    except (BadToken, NotFound):
        return web.pages.problem("invalid_link")
    form = await read_form(request)
    try:
        web.forms.check(field_value(form, "csrf"), FORM, subscriber_id, list_id)
    except FormExpired:
        return web.pages.render(
            "confirm",
            found.subscriber.locale,
            status=400,
            list_name=found.mailing_list.name,
            csrf=web.forms.make(FORM, subscriber_id, list_id),
            expired=True,
        )
    consent = Consent(
        found.subscription.source,
        client_ip(request),
        user_agent(request),
        web.settings.web.consent_version,
    )
    try:
        result = await run_in_threadpool(_confirm, web, subscriber_id, list_id, consent)
    except NotFound:
        return web.pages.problem("invalid_link", found.subscriber.locale)
    if result == Confirmed.CONFIRMED:
        web.events.record(
            PendingEvent(
                EventKind.CONFIRM,
                web.clock(),
                subscriber_id=subscriber_id,
                list_id=list_id,
                user_agent=consent.user_agent or "",
                ip=consent.ip,
            )
        )
    return _confirmed(web, found, already=result == Confirmed.ALREADY)


def _confirmed(web: WebContext, found: Membership, *, already: bool) -> Response:
    preferences = web.signer.dumps(
        Purpose.PREFERENCES, found.subscriber.id or 0, found.mailing_list.id or 0
    )
    return web.pages.render(
        "confirmed",
        found.subscriber.locale,
        list_name=found.mailing_list.name,
        already=already,
        preferences_url=f"/p/{preferences}",
    )


def _find(web: WebContext, subscriber_id: int, list_id: int) -> Membership:
    with session_scope(web.engine) as session:
        return membership(session, subscriber_id, list_id)


def _confirm(web: WebContext, subscriber_id: int, list_id: int, consent: Consent) -> Confirmed:
    with session_scope(web.engine) as session:
        return confirm(session, subscriber_id=subscriber_id, list_id=list_id, consent=consent)
