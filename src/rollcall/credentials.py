"""The secrets that open the service: CallPower keys and staff tokens.

Comparison is constant-time. The service never runs open: when the environment names no secret,
one is generated on first start, stored in the database (so every process and restart shares
it) and shown by `rollcall keys show`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from rollcall.db import Base, Database, table_of
from rollcall.dialect import insert_ignoring_conflicts
from rollcall.glance import ADMIN_TOKEN as ADMIN_TOKEN
from rollcall.glance import CALLPOWER_KEY as CALLPOWER_KEY
from rollcall.glance import CONSOLE_SECRET as CONSOLE_SECRET
from rollcall.logs import keep_secret


class StoredSecret(Base):
    __tablename__ = "stored_secrets"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(255))


def matches(presented: str | None, accepted: Iterable[str]) -> bool:
    """True when `presented` equals one of `accepted`; every candidate is compared in constant time."""
    if not presented:
        return False
    given = presented.encode()
    found = False
    for candidate in accepted:
        # No early exit: the time taken does not tell which key matched, or how much of it.
        found |= bool(candidate) and hmac.compare_digest(given, candidate.encode())
    return found


def fingerprint(token: str) -> str:
    """What a token is known by where it must not be kept (a console session, the audit log)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def stored_secret(session: Session, name: str) -> str | None:
    """A generated secret as stored; from now on no log line of this process shows it."""
    value = session.scalar(sa.select(StoredSecret.value).where(StoredSecret.name == name))
    keep_secret(value)
    return value


def ensure_secret(database: Database, name: str) -> tuple[str, bool]:
    """The stored secret `name`, made now if there is none; returns (secret, made_now)."""
    with database.writing() as session:
        existing = stored_secret(session, name)
        if existing:
            return existing, False
        value = secrets.token_urlsafe(32)
        session.execute(insert_ignoring_conflicts(session, table_of(StoredSecret)).values(name=name, value=value))
        return stored_secret(session, name) or value, True
