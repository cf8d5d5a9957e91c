"""Double opt-in `/confirm/{token}`: GET shows a button, the POST activates and records consent.

A GET (a link scanner, a prefetching mail client) never confirms anyone; the POST carries a
signed form token and stores the time, IP address, user agent and consent text version.
The POST that activates the subscription also mails the welcome, after the answer: only
that one, so nobody is welcomed twice, and a welcome that cannot be sent is logged, never
a reason to undo or refuse the confirmation.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.db.models import EventKind
from digest.errors import NotFound
from digest.send.confirmations import welcome_envelope
from digest.send.one_off import send_one
from digest.tracking.tokens import Purpose
from digest.web.context import (
    Linked,
    Web,
    WebContext,
    checked_form,
    client_ip,
    find_membership,
    open_link,
    user_agent,
)
from digest.web.events import PendingEvent
from subscribers.consent import Confirmed, Membership, confirm
from subscribers.models import Subscription, SubscriptionStatus
from subscribers.people import Consent

log = logging.getLogger(__name__)
router = APIRouter()
FORM = "confirm"


@router.get("/confirm/{token}", include_in_schema=False)
async def confirm_page(token: str, web: Web) -> Response:
    link = await open_link(web, Purpose.CONFIRM, token, find_membership)
    if isinstance(link, Response):
        return link
    status = link.found.subscription.status
    if status == SubscriptionStatus.UNSUBSCRIBED:
        return web.pages.problem("invalid_link", link.found.subscriber.locale)
    if status == SubscriptionStatus.ACTIVE:
        return _confirmed(web, link.found, already=True)
    return _form(web, link)


@router.post("/confirm/{token}", include_in_schema=False)
async def confirm_post(
    token: str, request: Request, web: Web, background: BackgroundTasks
) -> Response:
    link = await open_link(web, Purpose.CONFIRM, token, find_membership)
    if isinstance(link, Response):
        return link
    if await checked_form(web, request, FORM, link) is None:
        return _form(web, link, expired=True)
    found = link.found
    consent = Consent(
        found.subscription.source,
        client_ip(request),
        user_agent(request),
        web.settings.web.consent_version,
    )
    try:
        result = await run_in_threadpool(_confirm, web, link, consent)
    except NotFound:
        return web.pages.problem("invalid_link", found.subscriber.locale)
    if result == Confirmed.CONFIRMED:
        web.events.record(
            PendingEvent(
                EventKind.CONFIRM,
                web.clock(),
                subscriber_id=link.subscriber_id,
                list_id=link.list_id,
                user_agent=consent.user_agent or "",
                ip=consent.ip,
            )
        )
        background.add_task(send_welcome, web, link.subscriber_id, link.list_id)
    return _confirmed(web, found, already=result == Confirmed.ALREADY)


async def send_welcome(web: WebContext, subscriber_id: int, list_id: int) -> None:
    """Mail the welcome of a subscription just confirmed; a failure is logged, nothing more."""
    try:
        envelope = await run_in_threadpool(
            lambda: welcome_envelope(
                web.engine,
                web.settings,
                subscriber_id=subscriber_id,
                list_id=list_id,
                renderer=web.renderer,
                now=web.clock(),
            )
        )
        outcome = await send_one(web.sender_factory(), envelope)
    except Exception:  # the subscription is confirmed whatever happens to its welcome
        log.exception("welcome email of subscriber %s on list %s not sent", subscriber_id, list_id)
        return
    if outcome.status != "sent":
        log.warning(
            "welcome email of subscriber %s on list %s refused: %s %r",
            subscriber_id,
            list_id,
            outcome.code,
            outcome.message,
        )


def _form(web: WebContext, link: Linked[Membership], *, expired: bool = False) -> Response:
    return web.pages.render(
        "confirm",
        link.found.subscriber.locale,
        status=400 if expired else 200,
        list_name=link.found.mailing_list.name,
        csrf=web.forms.make(FORM, link.subscriber_id, link.list_id),
        expired=expired,
    )


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


def _confirm(web: WebContext, link: Linked[Membership], consent: Consent) -> Confirmed:
    with session_scope(web.engine) as session:
        # Two POSTs at once: the second waits for the first (PostgreSQL row lock) and then
        # finds the subscription active, so only one of them confirms it and welcomes.
        session.exec(
            select(Subscription.id)
            .where(Subscription.subscriber_id == link.subscriber_id)
            .where(Subscription.list_id == link.list_id)
            .with_for_update()
        ).first()
        return confirm(
            session, subscriber_id=link.subscriber_id, list_id=link.list_id, consent=consent
        )
