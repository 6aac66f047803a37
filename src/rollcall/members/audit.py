"""The audit log: who erased or exported a member's data, when, and what it came to.

Who is the actor's name, never a secret: a staff token appears as the start of its SHA-256
fingerprint (`token 1a2b3c4d5e6f`), the CLI as the operating-system user that ran it.
"""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from rollcall.credentials import fingerprint
from rollcall.db import Base, JSONDocument, UTCDateTime
from rollcall.documents import Document
from rollcall.paging import Page, PageRequest, keyset_page
from rollcall.times import utcnow

FINGERPRINT_LENGTH = 12  # hex characters of a token's SHA-256 shown as its name


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(32))  # member.erased, member.exported
    subject: Mapped[str] = mapped_column(sa.String(64))  # the member's id
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class AuditDocument(Document):
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any] | None


def token_actor(token: str) -> str:
    """A staff token's name in the log: the start of its fingerprint, which reveals nothing of it."""
    return fingerprint_actor(fingerprint(token))


def fingerprint_actor(token_fingerprint: str) -> str:
    """The same name from a fingerprint already made (the console's session keeps one)."""
    return f"token {token_fingerprint[:FINGERPRINT_LENGTH]}"


def cli_actor() -> str:
    try:
        return f"cli {getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


def record(session: Session, actor: str, action: str, subject: str, details: dict[str, Any] | None = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, subject=subject, details=details))
    session.flush()


def list_entries(session: Session, page: PageRequest) -> Page[AuditEntry]:
    """Newest first."""
    return keyset_page(session, sa.select(AuditEntry), [AuditEntry.id], page, lambda entry: (entry.id,))
