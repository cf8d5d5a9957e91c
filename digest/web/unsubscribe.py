"""Unsubscribe `/u/{token}`: GET shows a button and changes nothing; POST unsubscribes (RFC 8058).

Mailbox providers POST `List-Unsubscribe=One-Click` (urlencoded or multipart, no cookie)
to the URL of the List-Unsubscribe header; the page's own button POSTs the same body.
Link scanners only GET, so they never unsubscribe anyone. The POST answers 200 (never a
redirect), unsubscribes from that list only, and can be repeated harmlessly. It is never
lost: when the database is busy, it is spooled to a file and applied within seconds.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from digest.errors import NotFound
from digest.tracking.tokens import BadToken, Purpose
from digest.web.background import background_of
from digest.web.context import Web, WebContext, field_value, find_membership, open_link, read_form
from digest.web.leaving import leave

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
        preferences_url=_preferences_url(web, link.subscriber_id, link.list_id),
    )


@router.post("/u/{token}", include_in_schema=False)
async def one_click(token: str, request: Request, web: Web) -> Response:
    try:
        ids = web.ids(Purpose.UNSUBSCRIBE, token)
    except BadToken:
        return web.pages.problem("invalid_link")
    form = await read_form(request)
    if field_value(form, ONE_CLICK[0]) != ONE_CLICK[1]:
        return web.pages.problem("bad_request")
    background = background_of(request)
    try:
        left = await run_in_threadpool(leave, web, background.spool, request, ids, False)
    except NotFound:
        return web.pages.problem("invalid_link")
    for list_id in left.changed or ():
        web.record_unsubscribe(request, left.subscriber_id(ids[0]), list_id)
    if left.changed is None:  # spooled: the database was busy
        background.spooled()
    found = left.found
    return web.pages.render(
        "unsubscribed",
        found.subscriber.locale if found else None,
        list_name=found.mailing_list.name if found else "",
        every_list=False,
        preferences_url=_preferences_url(web, *ids),
    )


def _preferences_url(web: WebContext, subscriber_id: int, list_id: int) -> str:
    return f"/p/{web.signer.dumps(Purpose.PREFERENCES, subscriber_id, list_id)}"
