"""Editor accounts for the web preview: Argon2id password hashes, logins that reveal nothing.

A wrong password and an unknown address take the same path (an Argon2 verification
against a stand-in hash) and get the same answer, so a login form cannot tell which
addresses have accounts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlmodel import Session, col, select

from digest.db.models import Editor
from digest.errors import AlreadyExists, InvalidInput, NotFound
from subscribers.validate import normalize_email

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()  # Argon2id with the library's RFC 9106 parameters


@cache
def _stand_in() -> str:
    return _HASHER.hash("stand-in: unknown addresses are verified against this")


def login_name(email: str) -> str:
    """An editor's login: their address, checked, in lower case (logins ignore case)."""
    return normalize_email(email).lower()


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"the password has more than {MAX_PASSWORD} characters")
    return password


def add_editor(session: Session, email: str, password: str) -> Editor:
    """A new editor account (the password is only stored hashed)."""
    address = login_name(email)
    check_password(password)
    if find_editor(session, address) is not None:
        raise AlreadyExists(f"editor {address} already exists")
    editor = Editor(email=address, password_hash=_HASHER.hash(password))
    session.add(editor)
    session.flush()
    return editor


def remove_editor(session: Session, email: str) -> None:
    editor = find_editor(session, login_name(email))
    if editor is None:
        raise NotFound(f"no editor {email}: see `digest editors list`")
    session.delete(editor)


def all_editors(session: Session) -> list[Editor]:
    return list(session.exec(select(Editor).order_by(col(Editor.email))))


def find_editor(session: Session, email: str) -> Editor | None:
    return session.exec(select(Editor).where(Editor.email == email)).first()


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> Editor | None:
    """The editor whose email and password these are, else None (whatever was wrong)."""
    try:
        address = login_name(email)
    except InvalidInput:
        address = ""
    editor = find_editor(session, address) if address else None
    stored = editor.password_hash if editor is not None else _stand_in()
    try:
        _HASHER.verify(stored, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if editor is None:
        return None
    if _HASHER.check_needs_rehash(stored):
        editor.password_hash = _HASHER.hash(password)
    editor.last_login_at = now
    session.add(editor)
    return editor


def password_stamp(editor: Editor) -> str:
    """A short fingerprint of the stored hash: a new password ends the old sessions."""
    return hashlib.blake2s(editor.password_hash.encode(), digest_size=6).hexdigest()
