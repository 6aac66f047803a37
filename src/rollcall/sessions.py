"""The console's sessions: a signed cookie holding a CSRF token and, once signed in, a session
key that names a row of `console_sessions` on the server.

The cookie is signed with a secret kept in the database (made on first start), HttpOnly,
SameSite=Strict, and Secure when the console is reached over HTTPS. A signed-in session is a row
(the key's SHA-256, never the key): signing out ends it there, so the old cookie opens nothing
afterwards, and staff can end every session at once (`end_all_sessions`, the console's button,
`rollcall sessions end`). A session ends by itself after `MAX_AGE`, and when the staff token that
opened it (kept as its fingerprint) leaves ROLLCALL_ADMIN_TOKEN. Before signing in, a visitor has
a cookie only: nothing is written for someone who has not given a token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Mapped, Session, mapped_column
from starlette.requests import Request
from starlette.responses import Response

from rollcall.credentials import fingerprint
from rollcall.db import Base, Database, UTCDateTime
from rollcall.times import utcnow

COOKIE = "rollcall_console"
MAX_AGE = 12 * 3600


class ConsoleSessionRow(Base):
    """A signed-in console session."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # SHA-256 (hex) of the cookie's key
    staff: Mapped[str] = mapped_column(sa.String(64))  # fingerprint of the staff token that signed in
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


def _row_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def active_staff(session: Session, key: str) -> str | None:
    """The fingerprint of the staff token behind a session key, while the session lasts."""
    row = session.get(ConsoleSessionRow, _row_id(key))
    if row is None or row.ended_at is not None or row.created_at < utcnow() - dt.timedelta(seconds=MAX_AGE):
        return None
    return row.staff


def start_session(session: Session, staff: str) -> str:
    """A new signed-in session for the staff token with this fingerprint; its key (for the
    cookie). Sessions past their age are forgotten on the way."""
    now = utcnow()
    session.execute(
        sa.delete(ConsoleSessionRow).where(
            sa.or_(
                ConsoleSessionRow.ended_at.is_not(None),
                ConsoleSessionRow.created_at < now - dt.timedelta(seconds=MAX_AGE),
            )
        )
    )
    key = secrets.token_urlsafe(32)
    session.add(ConsoleSessionRow(id=_row_id(key), staff=staff, created_at=now))
    session.flush()
    return key


def end_session(session: Session, key: str) -> None:
    session.execute(
        sa.update(ConsoleSessionRow)
        .where(ConsoleSessionRow.id == _row_id(key), ConsoleSessionRow.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def end_all_sessions(session: Session) -> int:
    """End every console session now; how many were open."""
    result: Any = session.execute(
        sa.update(ConsoleSessionRow).where(ConsoleSessionRow.ended_at.is_(None)).values(ended_at=utcnow())
    )
    return int(result.rowcount)


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    key: str | None = None  # the session's key, once signed in
    staff: str | None = None  # fingerprint of the staff token that signed in (while the session lasts)

    def signed_in(self, tokens: tuple[str, ...]) -> bool:
        return self.staff is not None and any(hmac.compare_digest(self.staff, fingerprint(t)) for t in tokens)

    def csrf_matches(self, presented: Any) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(), self.csrf.encode())


class Sessions:
    """Reading and writing the cookie, and the session rows behind it."""

    def __init__(self, secret: str, database: Database) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="rollcall.console")
        self._database = database

    def load(self, request: Request) -> ConsoleSession:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                data = self._serializer.loads(cookie, max_age=MAX_AGE)
                csrf, key = str(data["csrf"]), data.get("key")
            except (BadSignature, KeyError, TypeError):
                return ConsoleSession(csrf=secrets.token_urlsafe(24))
            if not isinstance(key, str):
                return ConsoleSession(csrf=csrf)
            with self._database.reading() as session:
                staff = active_staff(session, key)
            return ConsoleSession(csrf=csrf, key=key if staff else None, staff=staff)
        return ConsoleSession(csrf=secrets.token_urlsafe(24))

    def sign_in(self, token: str) -> ConsoleSession:
        """A new session for this (checked) staff token. A fresh CSRF token with every sign-in:
        one seen before signing in is worth nothing after."""
        staff = fingerprint(token)
        with self._database.writing() as session:
            key = start_session(session, staff)
        return ConsoleSession(csrf=secrets.token_urlsafe(24), key=key, staff=staff)

    def sign_out(self, current: ConsoleSession) -> ConsoleSession:
        if current.key is not None:
            with self._database.writing() as session:
                end_session(session, current.key)
        return ConsoleSession(csrf=secrets.token_urlsafe(24))

    def end_all(self, current: ConsoleSession) -> tuple[ConsoleSession, int]:
        with self._database.writing() as session:
            ended = end_all_sessions(session)
        return replace(current, key=None, staff=None), ended

    def save(self, request: Request, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps({"csrf": session.csrf, "key": session.key}),
            max_age=MAX_AGE,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
