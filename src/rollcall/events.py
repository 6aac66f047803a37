"""Events: what happened, written in the same transaction as the change they describe (an
outbox: an event exists if and only if its change was committed), read in order by the feed and
pushed to webhooks by the deliverer.

Event ids increase in the order their transactions commit, so a reader that remembers the last
id it saw and reads what follows misses nothing and reads nothing twice. SQLite has one writer
at a time, which gives that order; on PostgreSQL every transaction that writes events takes one
advisory lock just before it does, held until it commits, so a later id never becomes visible
before an earlier one.

An event names its subject (the post, user, signup or call) and keeps only what of it may change
later: a signup's quantity and time, a call's whole document (its state moves on). Posts and
users never change, so their document is read when the event is shown, exactly as the staff API
shows it. That keeps the importer's writes small (2.3 events per imported call) and keeps no
second copy of a member's data: once a member is erased, events about what was theirs show
`{"id": ..., "erased": true}`.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Mapped, Session, mapped_column

from rollcall.activity.models import Post, PostDocument, Signup, SignupDocument, User, UserDocument
from rollcall.db import Base, JSONDocument, UTCDateTime, table_of
from rollcall.dialect import driver_json, driver_times, insert_rows, lock_events
from rollcall.errors import InvalidInput
from rollcall.paging import Page, PageRequest, any_of, keyset_page
from rollcall.times import iso_utc, utcnow

ID_PREFIX = "evt_"


class EventType(enum.StrEnum):
    POST_CREATED = "post.created"
    SIGNUP_CREATED = "signup.created"
    SIGNUP_UPDATED = "signup.updated"  # its quantity changed
    USER_CREATED = "user.created"
    USER_ERASED = "user.erased"
    CALL_REJECTED = "call.rejected"
    CALL_UNMAPPED = "call.unmapped"  # the first waiting call of a CallPower campaign with no action
    CALL_DEAD = "call.dead"
    WEBHOOK_TEST = "webhook.test"  # sent by an operator to one endpoint


# The operators' events about a call: they keep the call's document as it was (a member's erasure scrubs them).
CALL_EVENTS = (EventType.CALL_REJECTED, EventType.CALL_UNMAPPED, EventType.CALL_DEAD)


class Event(Base):
    __tablename__ = "events"
    # By type, for the feed's filter and the webhooks' subscriptions. The retention reads the
    # oldest rows by id (ids grow with time): no index on the time, which every event would write.
    __table_args__ = (sa.Index("ix_events_type_id", "type", "id"),)

    # An integer that only grows (ROWID on SQLite, an identity on PostgreSQL); shown as `evt_...`.
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    subject: Mapped[str] = mapped_column(sa.String(64))  # the id of what it is about
    # What of the subject may change later, as it was then (see the module's docstring).
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


_events = table_of(Event)
_COLUMNS = ("type", "created_at", "subject", "data")
# A new event: its type, its subject's id, and what of the subject must be kept as it is now.
NewEvent = tuple[EventType, object, dict[str, Any] | None]


def event_id(number: int) -> str:
    """`evt_` and the number, zero-padded: the text order of ids is their order."""
    return f"{ID_PREFIX}{number:016d}"


def event_number(text: str, *, field: str = "filter[after]") -> int:
    """The number of an event id (`evt_0000000000000042` or `evt_42`); `InvalidInput` otherwise."""
    digits = text.removeprefix(ID_PREFIX)
    if not text.startswith(ID_PREFIX) or not digits.isdigit() or len(digits) > 18:
        raise InvalidInput({field: [f"{text!r} is not an event id (evt_...)."]})
    return int(digits)


def record_events(session: Session, events: Sequence[NewEvent]) -> list[int]:
    """Write events in the caller's transaction (they commit with it, or not at all); their numbers."""
    if not events:
        return []
    lock_events(session)  # ids in commit order (PostgreSQL); held until the transaction ends
    now = driver_times(session)(utcnow())
    rows = [
        (str(kind), now, str(subject), None if data is None else driver_json(data)) for kind, subject, data in events
    ]
    numbers = [number for (number,) in insert_rows(session, _events, _COLUMNS, rows, returning=("id",))]
    return sorted(numbers)


# -- reading them -------------------------------------------------------------------------------


class EventDocument(BaseModel):
    id: str = Field(description="evt_ and a number: ids only grow, in the order events happened.")
    type: EventType
    timestamp: str = Field(description="When it happened (ISO-8601 UTC).")
    data: dict[str, Any] = Field(
        description='The resource\'s document as the staff API shows it ({"id": ..., "erased": true} once its '
        "member was erased)."
    )


def documents(session: Session, events: Sequence[Event]) -> list[dict[str, Any]]:
    """Events as the feed and webhooks show them: each with its subject's document."""
    data = _subjects(session, events)
    return [
        {"id": event_id(event.id), "type": event.type, "timestamp": iso_utc(event.created_at), "data": data[event.id]}
        for event in events
    ]


def _subjects(session: Session, events: Sequence[Event]) -> dict[int, dict[str, Any]]:
    """Each event's data: read from its subject (one query per kind of subject), or as kept."""
    wanted: dict[type[Any], set[Any]] = {User: set(), Post: set(), Signup: set()}
    for event in events:
        model = _SUBJECTS.get(event.type)
        if model is not None:
            wanted[model].add(event.subject if model is User else int(event.subject))
    found: dict[type[Any], dict[str, dict[str, Any]]] = {}
    for model, ids in wanted.items():
        # The table's rows, not ORM objects: a document is made of its columns alone, and the
        # deliverer makes one per delivery (ORM objects cost it a fifth of its database time).
        table = table_of(model)
        rows: Any = session.execute(sa.select(table).where(table.c.id.in_(ids))).mappings() if ids else []
        found[model] = {str(row["id"]): _SHAPES[model].of(dict(row)) for row in rows}
    data = {}
    for event in events:
        model = _SUBJECTS.get(event.type)
        if model is None:
            data[event.id] = event.data or {}
            continue
        document = found[model].get(event.subject)
        if document is None:
            data[event.id] = {"id": event.subject if model is User else int(event.subject), "erased": True}
        else:
            data[event.id] = {**document, **(event.data or {})}  # a signup's quantity as it was then
    return data


_SUBJECTS: dict[str, type[Any]] = {
    EventType.POST_CREATED: Post,
    EventType.USER_CREATED: User,
    EventType.SIGNUP_CREATED: Signup,
    EventType.SIGNUP_UPDATED: Signup,
}
_SHAPES: dict[type[Any], Any] = {User: UserDocument, Post: PostDocument, Signup: SignupDocument}


def list_events(
    session: Session, page: PageRequest, *, types: Sequence[str] | None = None, after: int | None = None
) -> Page[Event]:
    """Events oldest first; `after` an event's number: only those that came after it."""
    query = sa.select(Event).where(*any_of(Event.type, types))
    if after is not None:
        query = query.where(Event.id > after)
    return keyset_page(session, query, [Event.id], page, lambda e: (e.id,), oldest_first=True)


def last_event_number(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.max(Event.id), 0))) or 0)


def delete_events_before(session: Session, moment: dt.datetime, *, limit: int = 5000) -> int:
    """Forget up to `limit` of the oldest events, those made before `moment` (the retention);
    returns how many."""
    oldest = session.execute(sa.select(Event.id, Event.created_at).order_by(Event.id).limit(limit)).all()
    ids = [number for number, created_at in oldest if created_at < moment]
    if ids:
        session.execute(sa.delete(Event).where(Event.id.in_(ids)))
    return len(ids)
