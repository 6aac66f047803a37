"""Deliveries: what an authenticated body became (a valid record, or the errors that refused it,
as its source read it) and how deliveries are stored, one statement for a whole group commit.

A delivery that breaks its source's contract is a refused delivery and is stored all the same (as
`rejected`), so an operator can see and repair it. A valid one is stored once: a second delivery
of the same call (the same de-duplication key) is skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.calls import statistics
from rollcall.calls.dedup import dedup_secret
from rollcall.calls.models import Call, CallDocument, CallState
from rollcall.calls.signals import announce_calls
from rollcall.calls.source import Source
from rollcall.db import table_of
from rollcall.dialect import driver_json, driver_time, insert_rows_ignoring_conflicts, named_rows
from rollcall.events import EventType, record_events
from rollcall.times import utcnow


class Refusal(enum.StrEnum):
    """Why a delivery cannot become a call (each interface says it its own way: HTTP 400, 415, 422)."""

    UNREADABLE = "unreadable"  # not JSON, or not an object
    UNSUPPORTED = "unsupported"  # neither JSON nor a form
    INVALID = "invalid"  # a record that breaks the contract


@dataclass(frozen=True, slots=True)
class Delivery:
    """One authenticated delivery, ready to store: a valid record (as its stored document), or
    the errors that refused it, with what is known of it either way."""

    raw: str  # the body as it came (text)
    content_type: str | None
    document: dict[str, Any] | None = None  # the validated, normalized record
    errors: dict[str, list[str]] | None = None
    refusal: Refusal | None = None  # None: a valid call
    campaign_id: int | None = None  # the source's campaign, even of a refused delivery when it can be read
    campaign_name: str | None = None
    # The caller's number, normalized by the source (a refused delivery's when it could be read:
    # how a member's rejected calls are found), and the call's time.
    mobile: str | None = None
    call_timestamp: dt.datetime | None = None
    dedup_key: str | None = None  # made where it is stored (`keyed`): it needs the database's secret
    defaulted: list[str] | None = None  # fields its campaign's defaults completed
    # The payload of a delivery its campaign's defaults could complete, until they are looked up
    # where it is stored (`complete_with_defaults`); None once they were.
    completable: Mapping[str, Any] | None = None

    def row(self, now: Any, time: Any) -> dict[str, Any]:
        """Its row in `calls`, as the driver takes it (`now` already is; `time` makes a time so)."""
        return {
            "state": (CallState.RECEIVED if self.document is not None else CallState.REJECTED).value,
            "dedup_key": self.dedup_key,
            "received_at": now,
            "updated_at": now,
            "raw": self.raw,
            "content_type": self.content_type,
            "record": driver_json(self.document),  # JSON null when refused, as SQLAlchemy stores None
            "errors": driver_json(self.errors),
            "callpower_campaign_id": self.campaign_id,
            "callpower_campaign_name": self.campaign_name,
            "mobile": self.mobile,
            "call_timestamp": time(self.call_timestamp),
            "attempts": 0,
            "next_attempt_at": now if self.document is not None else None,
            "defaulted": driver_json(self.defaulted),
        }


_calls = table_of(Call)
_STORED_COLUMNS = tuple(Delivery("", None).row(None, lambda moment: moment))


@dataclass(frozen=True)
class Stored:
    deliveries: list[Delivery]  # as stored (completed by their campaigns' defaults), in the order given
    new: int  # valid calls among them that were not stored before


def complete_with_defaults(session: Session, deliveries: Sequence[Delivery], source: Source) -> list[Delivery]:
    """Each delivery completed by its campaign's defaults, read in this transaction (so a default
    set a moment ago applies). Only deliveries that lack a descriptive field cost a query, one for
    all of them; calls that have every field never look."""
    waiting = {d.campaign_id for d in deliveries if d.completable is not None}
    if not waiting:
        return list(deliveries)
    found = source.defaults_of(session, waiting)
    completed = []
    for delivery in deliveries:
        defaults = found.get(delivery.campaign_id) if delivery.campaign_id is not None else None
        if defaults and delivery.completable is not None:
            delivery = source.check(
                delivery.completable, raw=delivery.raw, content_type=delivery.content_type, defaults=defaults
            )
        completed.append(delivery)
    return completed


def keyed(session: Session, deliveries: Sequence[Delivery], source: Source) -> list[Delivery]:
    """The deliveries, each valid one with its de-duplication key (keyed with the database's secret)."""
    secret = dedup_secret(session)
    return [
        dataclasses.replace(d, dedup_key=source.dedup_key(d.document, secret)) if d.document is not None else d
        for d in deliveries
    ]


def store_deliveries(session: Session, deliveries: Sequence[Delivery], source: Source) -> Stored:
    """Store deliveries in one statement, completed by their campaigns' defaults; a call stored
    before is skipped."""
    if not deliveries:
        return Stored([], 0)
    deliveries = keyed(session, complete_with_defaults(session, deliveries, source), source)
    now = utcnow()
    stamp = driver_time(session, now)
    time = functools.partial(driver_time, session)
    rows = named_rows(_STORED_COLUMNS, [delivery.row(stamp, time) for delivery in deliveries])
    inserted = insert_rows_ignoring_conflicts(session, _calls, _STORED_COLUMNS, rows, ("dedup_key", "id"))
    new_keys = {key for key, _ in inserted if key is not None}
    rejected = [call_id for key, call_id in inserted if key is None]
    stored = []  # refused deliveries are always new rows; a valid one only if its key went in
    for delivery in deliveries:
        if delivery.dedup_key is None:
            stored.append(delivery)
        elif delivery.dedup_key in new_keys:
            new_keys.discard(delivery.dedup_key)  # the same call twice in one batch went in once
            stored.append(delivery)
    source.note_stored(session, stored, now)
    statistics.count(
        session, [(d.campaign_id, now, CallState.RECEIVED if d.document else CallState.REJECTED, 1) for d in stored]
    )
    statistics.count_rejections(session, [(d.campaign_id, now, d.errors, 1) for d in stored if d.document is None])
    new = sum(1 for delivery in stored if delivery.document is not None)
    if new:
        announce_calls(session, in_process=False)  # the writer storing them imports in its gaps
    if rejected:  # operators hear of each call refused (CallPower will not send it again)
        refused = session.scalars(sa.select(Call).where(Call.id.in_(rejected)).order_by(Call.id))
        record_events(session, [(EventType.CALL_REJECTED, call.id, CallDocument.of(call)) for call in refused])
    return Stored(deliveries, new)
