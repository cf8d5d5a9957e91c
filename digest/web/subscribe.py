"""Public subscription form `GET|POST /subscribe`: double opt-in, honeypot, per-IP rate limit.

Whatever the address (new, already subscribed, withdrawn, suppressed, or a bot that filled
the hidden field), the answer is the same "check your inbox" page, after the same work: the
request is only queued, and the app's background worker mails the confirmation (with a
per-address cooldown, retried while the relay is down). The form tells nobody who is on a
list. Only lists with double opt-in take public subscriptions.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.errors import InvalidInput, NotFound
from digest.web.background import background_of
from digest.web.context import Web, WebContext, client_ip, field_value, read_form, user_agent
from subscribers.lists import get_list
from subscribers.models import MailingList
from subscribers.people import Consent, Person
from subscribers.requests import enqueue
from subscribers.validate import normalize_email

router = APIRouter()
HONEYPOT = "website"  # hidden from people by CSS; bots fill it in
ListQuery = Annotated[str, Query(alias="list", max_length=64)]


@router.get("/subscribe", include_in_schema=False)
async def subscribe_page(web: Web, list_slug: ListQuery = "", lang: str = "") -> Response:
    mailing_list = await run_in_threadpool(_public_list, web, list_slug)
    if mailing_list is None:
        return web.pages.problem("not_found", lang)
    return _form(web, mailing_list, lang)


@router.post("/subscribe", include_in_schema=False)
async def subscribe(request: Request, web: Web) -> Response:
    ip = client_ip(request) or "unknown"
    if not web.limiter.allow(ip):
        wait = web.limiter.retry_after(ip)
        return web.pages.problem("too_many", headers={"Retry-After": str(wait)})
    form = await read_form(request)
    locale = web.pages.locale(field_value(form, "locale"))
    mailing_list = await run_in_threadpool(_public_list, web, field_value(form, "list"))
    if mailing_list is None:
        return web.pages.problem("not_found", locale)
    if field_value(form, HONEYPOT):
        return web.pages.render("subscribe_sent", locale, list_name=mailing_list.name)
    email = field_value(form, "email")
    try:
        normalize_email(email, smtputf8=web.settings.smtp.smtputf8)
    except InvalidInput:
        return _form(web, mailing_list, locale, status=400, error=True, email=email)
    consent = Consent("web", ip, user_agent(request), web.settings.web.consent_version)
    name = field_value(form, "name")[:200]
    person = Person(email.strip(), web.settings.digest.timezone, name=name, locale=locale)
    # The same write whatever the address; what it means is decided by the queue's worker.
    await run_in_threadpool(_enqueue, web, mailing_list.id or 0, person, consent)
    background_of(request).queued()
    return web.pages.render("subscribe_sent", locale, list_name=mailing_list.name)


def _form(
    web: WebContext,
    mailing_list: MailingList,
    locale: str,
    *,
    status: int = 200,
    error: bool = False,
    email: str = "",
) -> Response:
    return web.pages.render(
        "subscribe",
        locale,
        status=status,
        list_name=mailing_list.name,
        list_slug=mailing_list.slug,
        error=error,
        email=email,
        honeypot=HONEYPOT,
        consent_version=web.settings.web.consent_version,
    )


def _public_list(web: WebContext, slug: str) -> MailingList | None:
    with session_scope(web.engine) as session:
        try:
            found = get_list(session, slug.strip())
        except NotFound:
            return None
    return found if found.double_opt_in else None


def _enqueue(web: WebContext, list_id: int, person: Person, consent: Consent) -> None:
    with session_scope(web.engine) as session:
        enqueue(session, person, list_id, consent, web.clock())
