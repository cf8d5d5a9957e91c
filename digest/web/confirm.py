"""Double opt-in `/confirm/{token}`: GET shows a button, the POST activates and records consent.

A GET (a link scanner, a prefetching mail client) never confirms anyone; the POST carries a
signed form token and stores the time, IP address, user agent and consent text version.
A link confirms only while it is its subscription's newest and younger than
`[web] confirm_max_age_days`; it may re-open a withdrawn subscription, since only the
address's owner could have followed it.
The POST that activates the subscription also mails the welcome, after the answer: only
that one, so nobody is welcomed twice, and a welcome that cannot be sent is logged, never
a reason to undo or refuse the confirmation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, Request, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.db.models import EventKind
from digest.errors import NotFound
from digest.send.confirmations import welcome_envelope
from digest.send.one_off import send_one
from digest.tracking.tokens import BadToken, Purpose
from digest.web.context import (
    Linked,
    Web,
    WebContext,
    checked_form,
    client_ip,
    user_agent,
)
from digest.web.events import PendingEvent
from subscribers.consent import Confirmed, Membership, confirm, confirmable, membership
from subscribers.models import Subscription, SubscriptionStatus
from subscribers.people import Consent

log = logging.getLogger(__name__)
router = APIRouter()
FORM = "confirm"


@dataclass(frozen=True)
class ConfirmLink:
    """A confirmation link: the subscription it names, its nonce, and whether it can still
    confirm (the subscription's newest link, not expired)."""

    link: Linked[Membership]
    nonce: int
    usable: bool


@router.get("/confirm/{token}", include_in_schema=False)
async def confirm_page(token: str, web: Web) -> Response:
    opened = await _open(web, token)
    if isinstance(opened, Response):
        return opened
    found = opened.link.found
    if found.subscription.status == SubscriptionStatus.ACTIVE:
        return _confirmed(web, found, already=True)
    if not opened.usable:  # an old, replaced or expired link, or a used one
        return web.pages.problem("invalid_link", found.subscriber.locale)
    return _form(web, opened.link)


@router.post("/confirm/{token}", include_in_schema=False)
async def confirm_post(
    token: str, request: Request, web: Web, background: BackgroundTasks
) -> Response:
    opened = await _open(web, token)
    if isinstance(opened, Response):
        return opened
    link = opened.link
    if await checked_form(web, request, FORM, link) is None:
        return _form(web, link, expired=True)
    found = link.found
    consent = Consent("", client_ip(request), user_agent(request), web.settings.web.consent_version)
    try:
        result = await run_in_threadpool(_confirm, web, opened, consent)
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


async def _open(web: WebContext, token: str) -> ConfirmLink | Response:
    """The link of `token` (subscriber, list, nonce); the "invalid link" page otherwise."""
    try:
        ids = web.signer.loads(Purpose.CONFIRM, token)
        if len(ids) != 3:  # links from before nonces: never valid again
            raise BadToken()
        subscriber_id, list_id, nonce = ids
        found, usable = await run_in_threadpool(_load, web, subscriber_id, list_id, nonce)
    except (BadToken, NotFound):
        return web.pages.problem("invalid_link")
    return ConfirmLink(Linked(subscriber_id, list_id, found), nonce, usable)


def _load(web: WebContext, subscriber_id: int, list_id: int, nonce: int) -> tuple[Membership, bool]:
    with session_scope(web.engine) as session:
        found = membership(session, subscriber_id, list_id)
        usable = confirmable(
            session, subscriber_id, list_id, nonce, max_age=_max_age(web), now=web.clock()
        )
        return found, usable


def _max_age(web: WebContext) -> timedelta:
    return timedelta(days=web.settings.web.confirm_max_age_days)


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


def _confirm(web: WebContext, opened: ConfirmLink, consent: Consent) -> Confirmed:
    link = opened.link
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
            session,
            subscriber_id=link.subscriber_id,
            list_id=link.list_id,
            nonce=opened.nonce,
            consent=consent,
            max_age=_max_age(web),
            now=web.clock(),
        )
