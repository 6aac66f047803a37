"""Storing deliveries (`source.Delivery`: what an authenticated body became, as its source read
it), one statement for a whole group commit.

A delivery that breaks its source's contract is a refused delivery and is stored all the same (as
`rejected`), so an operator can see and repair it. A valid one is stored once: a second delivery
of the same call (the same de-duplication key) is skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.calls import statistics
from rollcall.calls.dedup import dedup_secret
from rollcall.calls.models import Call, CallDocument, CallState
from rollcall.calls.signals import announce_calls
from rollcall.calls.source import Delivery, Source
from rollcall.db import table_of
from rollcall.dialect import driver_time, insert_rows_ignoring_conflicts, named_rows
from rollcall.events import EventType, record_events
from rollcall.times import utcnow

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
