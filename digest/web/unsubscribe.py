"""Unsubscribe `/u/{token}`: GET shows a button and changes nothing; POST unsubscribes (RFC 8058).

Mailbox providers POST `List-Unsubscribe=One-Click` (urlencoded or multipart, no cookie)
to the URL of the List-Unsubscribe header; the page's own button POSTs the same body.
Link scanners only GET, so they never unsubscribe anyone. The POST answers 200 (never a
redirect), unsubscribes from that list only, and can be repeated harmlessly.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.errors import NotFound
from digest.tracking.tokens import BadToken, Purpose
from digest.web.context import Web, WebContext, field_value, find_membership, open_link, read_form
from subscribers.consent import Membership, membership, withdraw

router = APIRouter()
ONE_CLICK = ("List-Unsubscribe", "One-Click")


@router.get("/u/{token}", include_in_schema=False)
async def unsubscribe_page(token: str, web: Web) -> Response:
    link = await open_link(web, Purpose.UNSUBSCRIBE, token, find_membership)
    if isinstance(link, Response):
        return link
    found = link.found
    return web.pages.render(
        "unsubscribe",
        found.subscriber.locale,
        list_name=found.mailing_list.name,
        done=found.subscription.status == "unsubscribed",
        preferences_url=_preferences_url(web, found),
    )


@router.post("/u/{token}", include_in_schema=False)
async def one_click(token: str, request: Request, web: Web) -> Response:
    try:
        subscriber_id, list_id = web.ids(Purpose.UNSUBSCRIBE, token)
    except BadToken:
        return web.pages.problem("invalid_link")
    form = await read_form(request)
    if field_value(form, ONE_CLICK[0]) != ONE_CLICK[1]:
        return web.pages.problem("bad_request")
    try:
        found, changed = await run_in_threadpool(_withdraw, web, subscriber_id, list_id)
    except NotFound:
        return web.pages.problem("invalid_link")
    if changed:
        web.record_unsubscribe(request, subscriber_id, list_id)
    return web.pages.render(
        "unsubscribed",
        found.subscriber.locale,
        list_name=found.mailing_list.name,
        every_list=False,
        preferences_url=_preferences_url(web, found),
    )


def _withdraw(web: WebContext, subscriber_id: int, list_id: int) -> tuple[Membership, list[int]]:
    with session_scope(web.engine) as session:
        changed = withdraw(session, subscriber_id=subscriber_id, list_id=list_id)
        return membership(session, subscriber_id, list_id), changed


def _preferences_url(web: WebContext, found: Membership) -> str:
    token = web.signer.dumps(
        Purpose.PREFERENCES, found.subscriber.id or 0, found.mailing_list.id or 0
    )
    return f"/p/{token}"
