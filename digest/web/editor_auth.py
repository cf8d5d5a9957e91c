"""Editor login for `/editor`: Argon2id passwords, a signed session cookie, CSRF per session.

The cookie (HttpOnly, SameSite=Strict, path /editor, Secure behind https) holds the editor
id, a fingerprint of their password hash (a new password ends old sessions) and a random
nonce; forms carry a token signed over the id and that nonce. A failed login, whatever
failed, gets the same page after the same delay: no account enumeration.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import cache

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from digest.db.engine import session_scope
from digest.db.models import Editor
from digest.editions.editors import authenticate, password_stamp
from digest.web.context import Web, WebContext, client_ip, field_value, read_form
from digest.web.ratelimit import RateLimiter

router = APIRouter()
COOKIE = "digest_editor"
SESSION_SECONDS = 12 * 3600
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
    """Signs and reads session cookies, per-session form tokens and login form tokens."""

    def __init__(self, secret_key: str) -> None:
        self._cookie = URLSafeTimedSerializer(secret_key, salt="digest.editor-session")
        self._csrf = URLSafeTimedSerializer(secret_key, salt="digest.editor-csrf")
        self._login = URLSafeTimedSerializer(secret_key, salt="digest.editor-login")

    def cookie(self, editor: Editor) -> str:
        return self._cookie.dumps([editor.id, password_stamp(editor), secrets.token_urlsafe(12)])

    def read(self, value: str) -> tuple[int, str, str] | None:
        try:
            data = self._cookie.loads(value, max_age=SESSION_SECONDS)
        except (BadSignature, UnicodeError, ValueError):
            return None
        if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], int)):
            return None
        return data[0], str(data[1]), str(data[2])

    def csrf(self, editor_id: int, nonce: str) -> str:
        return self._csrf.dumps([editor_id, nonce])

    def csrf_ok(self, token: str, editor_id: int, nonce: str) -> bool:
        try:
            return bool(self._csrf.loads(token, max_age=SESSION_SECONDS) == [editor_id, nonce])
        except (BadSignature, UnicodeError, ValueError):
            return False

    def login_token(self) -> str:
        return self._login.dumps("login")

    def login_token_ok(self, token: str, max_age: float) -> bool:
        try:
            return bool(self._login.loads(token, max_age=int(max_age)) == "login")
        except (BadSignature, UnicodeError, ValueError):
            return False


@cache
def sessions_for(secret_key: str) -> EditorSessions:
    return EditorSessions(secret_key)


async def signed_in(request: Request, web: WebContext) -> tuple[SignedIn, str] | None:
    """(the signed-in editor, their session nonce), or None."""
    value = request.cookies.get(COOKIE)
    sessions = sessions_for(web.settings.web.secret_key)
    found = sessions.read(value) if value else None
    if found is None:
        return None
    editor_id, stamp, nonce = found
    editor = await run_in_threadpool(_editor, web, editor_id)
    if editor is None or password_stamp(editor) != stamp:
        return None
    return SignedIn(editor_id, editor.email, sessions.csrf(editor_id, nonce)), nonce


def csrf_ok(web: WebContext, who: SignedIn, nonce: str, token: str) -> bool:
    return sessions_for(web.settings.web.secret_key).csrf_ok(token, who.editor_id, nonce)


def to_login() -> Response:
    return RedirectResponse(LOGIN, status_code=303)


@router.get(LOGIN, include_in_schema=False)
async def login_page(request: Request, web: Web) -> Response:
    if await signed_in(request, web) is not None:
        return RedirectResponse(HOME, status_code=303)
    return _login_page(web)


@router.post(LOGIN, include_in_schema=False)
async def login(request: Request, web: Web) -> Response:
    form = await read_form(request)
    sessions = sessions_for(web.settings.web.secret_key)
    if not sessions.login_token_ok(
        field_value(form, "csrf"), web.settings.web.form_max_age_hours * 3600
    ):
        return _login_page(web, error="expired_form", status=400)
    if not _limiter(request).allow(client_ip(request) or "?"):
        return _login_page(web, error="too_many", status=429)
    email, password = field_value(form, "email").strip(), field_value(form, "password")
    editor = await run_in_threadpool(_authenticate, web, email, password)
    if editor is None:
        await web.sleep(LOGIN_DELAY)
        return _login_page(web, error="wrong", status=400, email=email)
    response = RedirectResponse(HOME, status_code=303)
    response.set_cookie(
        COOKIE,
        sessions.cookie(editor),
        max_age=SESSION_SECONDS,
        path="/editor",
        httponly=True,
        samesite="strict",
        secure=web.settings.web.base_url.startswith("https://"),
    )
    return response


@router.post("/editor/logout", include_in_schema=False)
async def logout(request: Request, web: Web) -> Response:
    found = await signed_in(request, web)
    form = await read_form(request)
    if found is not None and not csrf_ok(web, *found, field_value(form, "csrf")):
        return web.pages.problem("expired_form")
    response = to_login()
    response.delete_cookie(COOKIE, path="/editor")
    return response


def _login_page(
    web: WebContext, *, error: str = "", status: int = 200, email: str = ""
) -> Response:
    return web.pages.render(
        "editor/login",
        status=status,
        csrf=sessions_for(web.settings.web.secret_key).login_token(),
        error=error,
        email=email,
        who=None,
    )


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "editor_logins", None)
    if limiter is None:
        limiter = state.editor_logins = RateLimiter(*LOGIN_RATE)
    return limiter


def _editor(web: WebContext, editor_id: int) -> Editor | None:
    with session_scope(web.engine) as session:
        return session.get(Editor, editor_id)


def _authenticate(web: WebContext, email: str, password: str) -> Editor | None:
    with session_scope(web.engine) as session:
        return authenticate(session, email, password, now=web.clock())
