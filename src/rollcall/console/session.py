"""The console's session: a signed cookie holding a CSRF token and, once signed in, which staff
token opened it.

The cookie is signed with a secret kept in the database (made on first start), HttpOnly,
SameSite=Strict, and Secure when the console is reached over HTTPS. A session names the staff
token that opened it by a fingerprint, so removing a token from ROLLCALL_ADMIN_TOKEN ends the
sessions it opened.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from rollcall.credentials import fingerprint

COOKIE = "rollcall_console"
MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    staff: str | None = None  # fingerprint of the staff token that signed in

    def signed_in(self, tokens: tuple[str, ...]) -> bool:
        return self.staff is not None and any(hmac.compare_digest(self.staff, fingerprint(t)) for t in tokens)

    def csrf_matches(self, presented: Any) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented.encode(), self.csrf.encode())

    def signing_in(self, token: str) -> ConsoleSession:
        # A fresh CSRF token with every sign-in: one seen before signing in is worth nothing after.
        return replace(self, staff=fingerprint(token), csrf=secrets.token_urlsafe(24))

    def signed_out(self) -> ConsoleSession:
        return ConsoleSession(csrf=secrets.token_urlsafe(24))


class Sessions:
    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="rollcall.console")

    def load(self, request: Request) -> ConsoleSession:
        cookie = request.cookies.get(COOKIE)
        if cookie:
            try:
                data = self._serializer.loads(cookie, max_age=MAX_AGE)
                return ConsoleSession(csrf=str(data["csrf"]), staff=data.get("staff"))
            except (BadSignature, KeyError, TypeError):
                pass
        return ConsoleSession(csrf=secrets.token_urlsafe(24))

    def save(self, request: Request, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps({"csrf": session.csrf, "staff": session.staff}),
            max_age=MAX_AGE,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
