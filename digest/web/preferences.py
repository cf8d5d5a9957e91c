"""Preferences `/p/{token}`: topics of the list, send hour, timezone, language; leave one or all.

The form carries a signed form token (CSRF) bound to the subscription; a POST without a
valid, fresh one changes nothing. Unknown topics, a bad hour or timezone are refused with
the form shown again and nothing saved. Leaving (one list or all) is never lost: spooled
while the database is busy, like the one-click unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import available_timezones

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.db.engine import session_scope
from digest.tracking.tokens import Purpose
from digest.web.background import background_of
from digest.web.context import (
    Web,
    WebContext,
    checked_form,
    client_ip,
    field_value,
    open_link,
    user_agent,
)
from digest.web.leaving import leave
from subscribers.consent import resubscribe
from subscribers.people import Consent, Suppressed
from subscribers.preferences import (
    Choices,
    PreferenceError,
    Preferences,
    load_preferences,
    save_preferences,
)

router = APIRouter()
FORM = "preferences"
ACTIONS = ("save", "unsubscribe", "unsubscribe_all", "resubscribe")


@cache
def timezones() -> tuple[str, ...]:
    """IANA zones offered in the form: Region/City names (no legacy aliases)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith("Etc")))


@dataclass(frozen=True)
class Choice:
    """What the form sent, checked for shape (the library checks meaning)."""

    action: str
    topic_ids: tuple[int, ...]
    hour: int | None
    timezone: str
    locale: str


@router.get("/p/{token}", include_in_schema=False)
async def preferences_page(token: str, web: Web) -> Response:
    link = await open_link(web, Purpose.PREFERENCES, token, _load)
    if isinstance(link, Response):
        return link
    return _page(web, link.found)


@router.post("/p/{token}", include_in_schema=False)
async def save(token: str, request: Request, web: Web) -> Response:
    link = await open_link(web, Purpose.PREFERENCES, token, _load)
    if isinstance(link, Response):
        return link
    subscriber_id, list_id, prefs = link.subscriber_id, link.list_id, link.found
    form = await checked_form(web, request, FORM, link)
    if form is None:
        return _page(web, prefs, status=400, error="expired_form")
    choice = _choice(form)
    if choice is None:
        return _page(web, prefs, status=400, error="bad_form")
    if choice.action in ("unsubscribe", "unsubscribe_all"):
        every = choice.action == "unsubscribe_all"
        background = background_of(request)
        ids = (subscriber_id, list_id)
        left = await run_in_threadpool(leave, web, background.spool, request, ids, every)
        for changed_list in left.changed or ():
            web.record_unsubscribe(request, left.subscriber_id(subscriber_id), changed_list)
        if left.changed is None:  # spooled: the database was busy
            background.spooled()
        return web.pages.render(
            "unsubscribed",
            prefs.locale,
            list_name=prefs.list_name,
            every_list=every,
            preferences_url=f"/p/{token}",
        )
    if choice.action == "resubscribe":
        consent = Consent(
            "preferences", client_ip(request), user_agent(request), web.settings.web.consent_version
        )
        try:
            prefs = await run_in_threadpool(_resubscribe, web, subscriber_id, list_id, consent)
        except Suppressed:
            return web.pages.problem("invalid_link", prefs.locale)
        return _page(web, prefs, notice="resubscribed")
    try:
        prefs = await run_in_threadpool(_save, web, subscriber_id, list_id, choice)
    except PreferenceError as exc:
        return _page(web, prefs, status=400, error=exc.code, submitted=choice)
    return _page(web, prefs, notice="saved")


def _choice(form: FormData) -> Choice | None:
    action = field_value(form, "action") or "save"
    if action not in ACTIONS:
        return None
    try:
        topic_ids = tuple(int(v) for v in form.getlist("topic") if isinstance(v, str))
        hour_text = field_value(form, "hour").strip()
        hour = int(hour_text) if hour_text else None
    except ValueError:
        return None
    return Choice(
        action=action,
        topic_ids=topic_ids,
        hour=hour,
        timezone=field_value(form, "timezone").strip(),
        locale=field_value(form, "locale").strip(),
    )


def _page(
    web: WebContext,
    prefs: Preferences,
    *,
    status: int = 200,
    error: str = "",
    notice: str = "",
    submitted: Choice | None = None,
) -> Response:
    chosen = set(submitted.topic_ids) if submitted else set(prefs.chosen)
    if not chosen:  # none stored means every topic of the list
        chosen = {t.id for t in prefs.topics}
    zones = timezones()
    return web.pages.render(
        "preferences",
        prefs.locale,
        status=status,
        prefs=prefs,
        topics=[(t.id, t.label(prefs.locale), t.id in chosen) for t in prefs.topics],
        hours=list(range(24)),
        hour=submitted.hour if submitted else prefs.send_hour,
        timezone=prefs.timezone,
        timezones=zones if prefs.timezone in zones else (prefs.timezone, *zones),
        csrf=web.forms.make(FORM, prefs.subscriber_id, prefs.list_id),
        error=error,
        notice=notice,
        active=prefs.status == "active",
        unsubscribed=prefs.status == "unsubscribed",
    )


def _load(web: WebContext, subscriber_id: int, list_id: int) -> Preferences:
    with session_scope(web.engine) as session:
        return load_preferences(session, subscriber_id, list_id)


def _save(web: WebContext, subscriber_id: int, list_id: int, choice: Choice) -> Preferences:
    with session_scope(web.engine) as session:
        choices = Choices(choice.topic_ids, choice.hour, choice.timezone, choice.locale)
        return save_preferences(
            session, subscriber_id=subscriber_id, list_id=list_id, choices=choices
        )


def _resubscribe(
    web: WebContext, subscriber_id: int, list_id: int, consent: Consent
) -> Preferences:
    with session_scope(web.engine) as session:
        resubscribe(session, subscriber_id=subscriber_id, list_id=list_id, consent=consent)
        return load_preferences(session, subscriber_id, list_id)
