"""The editor preview `/editor`: today's and tomorrow's editions, their segments and emails.

A segment (or a subscriber's address) shows the exact email, compiled by the sending code
with tracking off, at desktop and phone widths, with its text twin, subject, preheader and
size. Forms (approve, hold, release, pin, exclude, subject, note, order, test) POST with
the session's CSRF token; each change is recorded with the editor's address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from digest.catalog.articles import edition_articles
from digest.db.engine import session_scope
from digest.db.models import Topic
from digest.editions import workflow as editions
from digest.editions.controls import Refused
from digest.errors import DigestError, NotFound
from digest.inbound.paused import brake_pause
from digest.preview.edition import (
    EditionOverview,
    SegmentView,
    overview,
    render_preview,
    subscriber_segment,
)
from digest.render.renderer import RenderedMessage
from digest.selection.segments import Segment
from digest.send.proof import mail_test
from digest.tracking.stats import edition_stats
from digest.web.context import RowId, Web, WebContext, field_value, form_int, read_form
from digest.web.editor_auth import SignedIn, csrf_ok, signed_in, to_login
from subscribers.lists import offered_topic_ids
from subscribers.models import MailingList

router = APIRouter()
# The email previews are srcdoc iframes: they inherit this policy (images from anywhere,
# no script anywhere).
EDITOR_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; "
        "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


@dataclass(frozen=True)
class Preview:
    """One email as the editor sees it."""

    rendered: RenderedMessage
    segment: Segment
    label: str  # the segment key or the subscriber address it is for

    @property
    def kilobytes(self) -> float:
        return len(self.rendered.html.encode()) / 1000


@router.get("/editor", include_in_schema=False)
async def home(request: Request, web: Web) -> Response:
    found = await signed_in(request, web)
    if found is None:
        return to_login()
    rows = await run_in_threadpool(_upcoming, web)
    return _render(web, "editor/home", who=found[0], rows=rows)


@router.get("/editor/editions/{edition_id}", include_in_schema=False)
async def edition_page(
    edition_id: RowId,
    request: Request,
    web: Web,
    segment: str = "",
    email: str = "",
    done: str = "",
) -> Response:
    found = await signed_in(request, web)
    if found is None:
        return to_login()
    try:
        context = await run_in_threadpool(_page, web, edition_id, segment, email.strip())
    except NotFound:
        return web.pages.problem("not_found")
    return _render(web, "editor/edition", who=found[0], notice=done, error="", **context)


@router.post("/editor/editions/{edition_id}", include_in_schema=False)
async def act(edition_id: RowId, request: Request, web: Web) -> Response:
    found = await signed_in(request, web)
    if found is None:
        return to_login()
    who, nonce = found
    form = await read_form(request)
    if not csrf_ok(web, who, nonce, field_value(form, "csrf")):
        return web.pages.problem("expired_form")
    action = field_value(form, "action")
    segment, email = field_value(form, "segment"), field_value(form, "email").strip()
    try:
        if action == "test":
            done = await _send_test(web, who, edition_id, segment, email)
        else:
            await run_in_threadpool(_change, web, who, edition_id, action, form)
            done = action
    except Refused as exc:
        return await _error(web, who, edition_id, segment, email, exc.code)
    except NotFound:
        return web.pages.problem("not_found")
    except DigestError:
        return await _error(web, who, edition_id, segment, email, "bad_value")
    query = urlencode({k: v for k, v in (("segment", segment), ("email", email)) if v})
    target = f"/editor/editions/{edition_id}?{query}&done={done}".replace("?&", "?")
    return RedirectResponse(target, status_code=303)


async def _error(
    web: WebContext, who: SignedIn, edition_id: int, segment: str, email: str, code: str
) -> Response:
    """The edition page again, with what was refused (nothing was changed)."""
    try:
        context = await run_in_threadpool(_page, web, edition_id, segment, email)
    except NotFound:
        return web.pages.problem("not_found")
    return _render(web, "editor/edition", who=who, status=400, error=code, notice="", **context)


def _render(web: WebContext, name: str, *, status: int = 200, **context: Any) -> Response:
    language = web.pages.language(None)
    return web.pages.render(
        name,
        status=status,
        headers=EDITOR_HEADERS,
        gregorian=language.gregorian,
        hijri=language.hijri,
        **context,
    )


def _upcoming(web: WebContext) -> list[dict[str, Any]]:
    now = web.clock()
    with session_scope(web.engine) as session:
        pairs = editions.upcoming(session, timezone=web.settings.digest.timezone, now=now)
        ids = [(m, e.id or 0) for m, e in pairs]
    rows = []
    for mailing_list, edition_id in ids:
        found = overview(web.engine, web.settings, edition_id, now=now)
        rows.append(
            {
                "list": mailing_list,
                "edition": found.edition,
                "segments": found.segments,
                "subscribers": sum(s.subscribers for s in found.segments),
                "outbox": sum(found.outbox.values()),
            }
        )
    return rows


def _page(web: WebContext, edition_id: int, key: str, email: str) -> dict[str, Any]:
    now = web.clock()
    found = overview(web.engine, web.settings, edition_id, now=now)
    with session_scope(web.engine) as session:
        history = editions.actions(session, edition_id)
        window = edition_articles(session, found.mailing_list, found.edition.local_date)
        topics = _topics(session, found.mailing_list)
    figures = edition_stats(web.engine, edition_id=edition_id, top_links=0)
    slugs = {t.id: t.slug for t in topics}
    preview, email_problem = None, ""
    if email:
        try:
            chosen = subscriber_segment(web.engine, web.settings, edition_id, email, now=now)
        except DigestError:
            chosen, email_problem = None, "unknown_reader"
        if chosen is not None:
            preview = Preview(render_preview(web.renderer, *chosen), chosen[0], email)
        elif not email_problem:
            email_problem = "nothing_new"
    elif found.segments:
        view = _chosen(found, key)
        preview = Preview(
            render_preview(web.renderer, view.segment, view.sample_name), view.segment, view.anchor
        )
    return {
        "found": found,
        "edition": found.edition,
        "mailing_list": found.mailing_list,
        "controls": found.controls,
        "history": history,
        "window": window,
        "titles": {a.id: a.title for a, _ in window},
        "topics": topics,
        "order_slugs": [slug for t in found.controls.topic_order if (slug := slugs.get(t))],
        "preview": preview,
        "segment_key": preview.label if preview and not email else "",
        "email": email,
        "email_problem": email_problem,
        "budget_kb": web.settings.render.max_html_bytes / 1000,
        "editable": found.edition.status in editions.EDITABLE,
        "stats": figures[0] if figures else None,  # what came back: bounces, complaints
        "brake": brake_pause(edition_id, found.edition.status, history),
    }


def _topics(session: Session, mailing_list: MailingList) -> list[Topic]:
    offered = offered_topic_ids(session, mailing_list.id or 0)
    query = select(Topic).order_by(col(Topic.slug))
    if offered:
        query = query.where(col(Topic.id).in_(offered))
    return list(session.exec(query))


def _change(web: WebContext, who: SignedIn, edition_id: int, action: str, form: FormData) -> None:
    """Apply one form's change (a Refused error: nothing changed)."""
    actor, now, text = who.email, web.clock(), field_value(form, "text")
    with session_scope(web.engine) as session:
        if action == "approve":
            editions.approve(session, edition_id, actor=actor, now=now)
        elif action == "hold":
            editions.hold(session, edition_id, actor=actor)
        elif action == "release":
            editions.release(session, edition_id, actor=actor, now=now)
        elif action == "pin":
            top = field_value(form, "top") == "1"
            editions.pin(session, edition_id, _article_id(form), top=top, actor=actor)
        elif action == "unpin":
            editions.unpin(session, edition_id, _article_id(form), actor=actor)
        elif action == "exclude":
            editions.exclude(session, edition_id, _article_id(form), actor=actor)
        elif action == "include":
            editions.include(session, edition_id, _article_id(form), actor=actor)
        elif action == "subject":
            locale = field_value(form, "locale") or "ar"
            editions.set_subject(session, edition_id, text, locale=locale, actor=actor)
        elif action == "note":
            editions.set_note(session, edition_id, text, actor=actor)
        elif action == "order":
            slugs = [v for v in form.getlist("topic") if isinstance(v, str) and v]
            editions.set_order(session, edition_id, slugs, actor=actor)
        else:
            raise Refused("bad_value", f"unknown action {action[:40]!r}")


def _article_id(form: FormData) -> int:
    found = form_int(form, "article")
    if found is None:
        raise Refused("bad_value", "the article id is not a number of an article")
    return found


async def _send_test(web: WebContext, who: SignedIn, edition_id: int, key: str, email: str) -> str:
    """Mail the email on screen to the editor, through the real SMTP settings."""
    rendered, mailing_list = await run_in_threadpool(_for_test, web, edition_id, key, email)
    outcome = await _deliver(web, mailing_list, rendered, who.email)
    if outcome != "sent":
        raise Refused("test_failed", f"the test was not accepted: {outcome}")

    def note(session: Session) -> None:
        edition = editions.get_edition(session, edition_id)
        editions.record(session, edition, who.email, "test", f"{key or email} → {who.email}")

    await run_in_threadpool(_in_session, web, note)
    return "test"


async def _deliver(
    web: WebContext, mailing_list: MailingList, rendered: RenderedMessage, to: str
) -> str:
    outcome = await mail_test(web.settings, web.sender_factory(), mailing_list, rendered, to)
    return "sent" if outcome.status == "sent" else f"{outcome.code} {outcome.message}"


def _for_test(
    web: WebContext, edition_id: int, key: str, email: str
) -> tuple[RenderedMessage, MailingList]:
    found: EditionOverview = overview(web.engine, web.settings, edition_id, now=web.clock())
    if email:
        chosen = subscriber_segment(web.engine, web.settings, edition_id, email, now=web.clock())
        if chosen is None:
            raise Refused("nothing_new", f"{email} gets no email from this edition")
        segment, name = chosen
    else:
        if not found.segments:
            raise Refused("nothing_new", "this edition has no email to send yet")
        view = _chosen(found, key)
        segment, name = view.segment, view.sample_name
    return render_preview(web.renderer, segment, name), found.mailing_list


def _chosen(found: EditionOverview, anchor: str) -> SegmentView:
    """The segment asked for; the biggest when none is (or it has gone: nothing new left)."""
    try:
        return found.segment(anchor) if anchor else found.segments[0]
    except NotFound:
        return found.segments[0]


def _in_session(web: WebContext, work: Callable[[Session], None]) -> None:
    with session_scope(web.engine) as session:
        work(session)
