"""Editor login for `/editor`: Argon2id passwords, server-side sessions, CSRF per session.

The session cookie (HttpOnly, SameSite=Strict, path /editor, Secure behind https) holds a
random id; the database keeps only its SHA-256 (`editor_session`), with the editor, when it
ends and whether it was revoked, so logging out ends it at once and a stolen database holds
no usable cookie. A new password ends old sessions too. Forms carry a token signed over the
editor and the session. The login form's token is bound to a pre-session cookie (login
CSRF: another site cannot log a browser into its own account). A failed login, whatever
failed, gets the same page after the same delay: no account enumeration.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.db.models import Editor, EditorSession
from digest.editions.editors import authenticate, password_stamp
from digest.web.context import Web, WebContext, client_ip, field_value, read_form
from digest.web.ratelimit import RateLimiter

router = APIRouter()
COOKIE = "digest_editor"
PRE_COOKIE = "digest_login"  # the pre-session the login form's token is bound to
SESSION_SECONDS = 12 * 3600
SEEN_SECONDS = 60  # last_seen_at is written at most this often per session
LOGIN_DELAY = 1.0  # seconds added to every failed login
LOGIN_RATE = (10, 900.0)  # attempts per IP address in that many seconds
HOME = "/editor"
LOGIN = "/editor/login"


@dataclass(frozen=True)
class SignedIn:
    """The editor of this request, and the CSRF token their forms carry."""

    editor_id: int
    email: str
    csrf: str


class EditorSessions:
    """Signs and checks per-session form tokens and login form tokens."""

    def __init__(self, secret_key: str) -> None:
        self._csrf = URLSafeTimedSerializer(secret_key, salt="digest.editor-csrf")
        self._login = URLSafeTimedSerializer(secret_key, salt="digest.editor-login")

    def csrf(self, editor_id: int, nonce: str) -> str:
        return self._csrf.dumps([editor_id, nonce])

    def csrf_ok(self, token: str, editor_id: int, nonce: str) -> bool:
        try:
            return bool(self._csrf.loads(token, max_age=SESSION_SECONDS) == [editor_id, nonce])
        except (BadSignature, UnicodeError, ValueError):
            return False

    def login_token(self, pre: str) -> str:
        return self._login.dumps(["login", _hashed(pre)])

    def login_token_ok(self, token: str, pre: str, max_age: float) -> bool:
        try:
            found = self._login.loads(token, max_age=int(max_age))
        except (BadSignature, UnicodeError, ValueError):
            return False
        return bool(pre) and found == ["login", _hashed(pre)]


@cache
def sessions_for(secret_key: str) -> EditorSessions:
    return EditorSessions(secret_key)


async def signed_in(request: Request, web: WebContext) -> tuple[SignedIn, str] | None:
    """(the signed-in editor, their session's nonce), or None."""
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 100:
        return None
    found = await run_in_threadpool(_find_session, web, value)
    if found is None:
        return None
    editor_id, email, nonce = found
    return SignedIn(
        editor_id, email, sessions_for(web.settings.web.secret_key).csrf(editor_id, nonce)
    ), nonce


def csrf_ok(web: WebContext, who: SignedIn, nonce: str, token: str) -> bool:
    return sessions_for(web.settings.web.secret_key).csrf_ok(token, who.editor_id, nonce)


def to_login() -> Response:
    return RedirectResponse(LOGIN, status_code=303)


@router.get(LOGIN, include_in_schema=False)
async def login_page(request: Request, web: Web) -> Response:
    if await signed_in(request, web) is not None:
        return RedirectResponse(HOME, status_code=303)
    return _login_page(web, request)


@router.post(LOGIN, include_in_schema=False)
async def login(request: Request, web: Web) -> Response:
    form = await read_form(request)
    sessions = sessions_for(web.settings.web.secret_key)
    pre = request.cookies.get(PRE_COOKIE, "")
    max_age = web.settings.web.form_max_age_hours * 3600
    if not sessions.login_token_ok(field_value(form, "csrf"), pre, max_age):
        return _login_page(web, request, error="expired_form", status=400)
    if not _limiter(request).allow(client_ip(request) or "?"):
        return _login_page(web, request, error="too_many", status=429)
    email, password = field_value(form, "email").strip(), field_value(form, "password")
    opened = await run_in_threadpool(_open_session, web, email, password)
    if opened is None:
        await web.sleep(LOGIN_DELAY)
        return _login_page(web, request, error="wrong", status=400, email=email)
    response = RedirectResponse(HOME, status_code=303)
    response.set_cookie(COOKIE, opened, max_age=SESSION_SECONDS, path=HOME, **_flags(web))
    response.delete_cookie(PRE_COOKIE, path=LOGIN, **_flags(web))
    return response


@router.post("/editor/logout", include_in_schema=False)
async def logout(request: Request, web: Web) -> Response:
    found = await signed_in(request, web)
    form = await read_form(request)
    if found is not None:
        if not csrf_ok(web, *found, field_value(form, "csrf")):
            return web.pages.problem("expired_form")
        await run_in_threadpool(_revoke, web, found[1])
    response = to_login()
    response.delete_cookie(COOKIE, path=HOME, **_flags(web))
    return response


def _login_page(
    web: WebContext, request: Request, *, error: str = "", status: int = 200, email: str = ""
) -> Response:
    """The login form, its token bound to the browser's pre-session (made when missing)."""
    pre = request.cookies.get(PRE_COOKIE, "")
    fresh = not 20 <= len(pre) <= 64
    if fresh:
        pre = secrets.token_urlsafe(24)
    response = web.pages.render(
        "editor/login",
        status=status,
        csrf=sessions_for(web.settings.web.secret_key).login_token(pre),
        error=error,
        email=email,
        who=None,
    )
    if fresh:
        max_age = int(web.settings.web.form_max_age_hours * 3600)
        response.set_cookie(PRE_COOKIE, pre, max_age=max_age, path=LOGIN, **_flags(web))
    return response


def _flags(web: WebContext) -> dict[str, Any]:
    """Every editor cookie's attributes, when set and when cleared alike."""
    secure = web.settings.web.base_url.startswith("https://")
    return {"httponly": True, "samesite": "strict", "secure": secure}


def _hashed(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "editor_logins", None)
    if limiter is None:
        limiter = state.editor_logins = RateLimiter(*LOGIN_RATE)
    return limiter


def _open_session(web: WebContext, email: str, password: str) -> str | None:
    """The new session's cookie value when the password is right; None otherwise."""
    now = web.clock()
    with session_scope(web.engine) as session:
        editor = authenticate(session, email, password, now=now)
        if editor is None or editor.id is None:
            return None
        value = secrets.token_urlsafe(32)
        session.exec(
            delete(EditorSession).where(
                EditorSession.expires_at < now - timedelta(days=1)  # type: ignore[arg-type]
            )
        )
        session.add(
            EditorSession(
                token_hash=_hashed(value),
                editor_id=editor.id,
                stamp=password_stamp(editor),
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(seconds=SESSION_SECONDS),
            )
        )
        return value


def _find_session(web: WebContext, value: str) -> tuple[int, str, str] | None:
    """(editor id, address, nonce) of a live session; None when ended, revoked or unknown."""
    now = web.clock()
    with session_scope(web.engine) as session:
        row = session.exec(
            select(EditorSession).where(EditorSession.token_hash == _hashed(value))
        ).first()
        if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
            return None
        editor = session.get(Editor, row.editor_id)
        if editor is None or password_stamp(editor) != row.stamp:
            return None
        if now - _aware(row.last_seen_at) >= timedelta(seconds=SEEN_SECONDS):
            row.last_seen_at = now
            session.add(row)
        return row.editor_id, editor.email, str(row.id)


def _revoke(web: WebContext, nonce: str) -> None:
    with session_scope(web.engine) as session:
        row = session.get(EditorSession, int(nonce))
        if row is not None and row.revoked_at is None:
            row.revoked_at = web.clock()
            session.add(row)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
