"""Mending what a partner sent with a flaw: repairing a rejected call, and revalidating a
campaign's rejected calls with its defaults (for CallPower, `campaigns.set_campaign_defaults`).

CallPower never sends a call again once it was answered non-2xx, so a rejected call can only
become a post here. Every way back goes through the source's one validator (`Source.check`)
with the body as received (`Source.read_back`): a repair lays the operator's corrections over it, a default fills a
descriptive field it lacks. The received body is never changed; corrections are kept beside it
(`Call.repairs`), defaulted fields are named (`Call.defaulted`). A call that turns out equal to
one stored before becomes a `duplicate` of it, never a second post.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.calls import statistics
from rollcall.calls.deliveries import complete_with_defaults, keyed
from rollcall.calls.models import PARKED, Call, CallState, Revalidated
from rollcall.calls.service import get_call
from rollcall.calls.signals import announce_calls
from rollcall.calls.source import Delivery, Source
from rollcall.db import Database
from rollcall.errors import Conflict, InvalidInput
from rollcall.times import iso_utc, utcnow

# Rejected calls revalidated per transaction: short, so the intake's writer never waits long.
REVALIDATE_BATCH = 200


class CallNotRepairable(Conflict):
    def __init__(self, call_id: int, state: str) -> None:
        super().__init__(f"Call {call_id} is {state}; only rejected calls can be repaired.")


def _checked(session: Session, call: Call, payload: Mapping[str, Any], source: Source) -> Delivery:
    """The delivery `payload` makes, completed by its campaign's defaults as they are now."""
    [delivery] = complete_with_defaults(
        session, [source.check(payload, raw=call.raw, content_type=call.content_type)], source
    )
    return delivery


def _accept(session: Session, call: Call, delivery: Delivery, now: dt.datetime, source: Source) -> None:
    """A rejected call that passes now: `received` (the importer takes it), or `duplicate` of the
    stored call it equals. Its counts follow it (to its campaign as repaired)."""
    [delivery] = keyed(session, [delivery], source)
    assert delivery.document is not None and delivery.call_timestamp is not None
    previous_campaign = call.callpower_campaign_id
    holder = session.scalar(sa.select(Call.id).where(Call.dedup_key == delivery.dedup_key))
    if holder is None:
        try:
            with session.begin_nested():
                call.dedup_key = delivery.dedup_key
                session.flush()
        except sa.exc.IntegrityError:  # the same call was stored meanwhile (PostgreSQL)
            holder = session.scalar(sa.select(Call.id).where(Call.dedup_key == delivery.dedup_key))
    if holder is None:
        call.state, call.attempts, call.next_attempt_at = CallState.RECEIVED, 0, now
        announce_calls(session)
    else:
        call.state, call.dedup_key, call.duplicate_of = CallState.DUPLICATE, None, holder
    call.record = delivery.document  # `errors` stay: why it was refused, beside how it was mended
    call.callpower_campaign_id = delivery.campaign_id
    call.callpower_campaign_name = delivery.campaign_name
    call.mobile = delivery.mobile
    call.call_timestamp = delivery.call_timestamp
    call.defaulted = delivery.defaulted
    call.updated_at = now
    source.note_stored(session, [delivery], call.received_at)
    statistics.count(
        session,
        [
            (previous_campaign, call.received_at, CallState.REJECTED, -1),
            (delivery.campaign_id, call.received_at, call.state, 1),
        ],
    )
    statistics.count_rejections(session, [(previous_campaign, call.received_at, call.errors, -1)])
    session.flush()


def repair_call(session: Session, call_id: int, fields: Mapping[str, Any], source: Source) -> Call:
    """Correct a rejected call: its received body with `fields` laid over it (a null removes a
    field) goes through the validator. Still invalid: `InvalidInput` naming the fields, and the
    call stays rejected. Valid: it goes to the importer (or is a `duplicate`), and the
    correction is kept with its time."""
    call = get_call(session, call_id, for_update=True)
    if call.state != CallState.REJECTED:
        raise CallNotRepairable(call_id, call.state)
    unknown = {name: [f"{name} is not a field of a call record."] for name in fields if name not in source.fields}
    if unknown:
        raise InvalidInput(unknown)
    payload = {**(source.read_back(call.raw, call.content_type) or {}), **fields}
    delivery = _checked(session, call, payload, source)
    if delivery.document is None:
        raise InvalidInput(delivery.errors or {})
    now = utcnow()
    _accept(session, call, delivery, now, source)
    call.repairs = [*(call.repairs or []), {"at": iso_utc(now), "fields": dict(fields)}]
    session.flush()
    return call


def revalidate_calls(database: Database, campaign_id: int, source: Source) -> Revalidated:
    """Run a CallPower campaign's rejected calls through the validator again, with its defaults
    as they are now. Those that pass go to the importer; the others keep their state, with
    their errors as they are now. `REVALIDATE_BATCH` calls per transaction."""
    revalidated = duplicates = still_rejected = 0
    after = 0
    while True:
        with database.writing() as session:
            batch = session.scalars(
                sa.select(Call)
                .where(
                    Call.state == CallState.REJECTED,
                    Call.callpower_campaign_id == campaign_id,
                    Call.id > after,
                    sa.text(PARKED),
                )
                .order_by(Call.id)
                .limit(REVALIDATE_BATCH)
                .with_for_update()
            ).all()
            if not batch:
                break
            now = utcnow()
            for call in batch:
                payload = source.read_back(call.raw, call.content_type)
                delivery = _checked(session, call, payload, source) if payload is not None else None
                if delivery is None or delivery.document is None:
                    still_rejected += 1
                    if delivery is not None and delivery.errors != call.errors:
                        statistics.count_rejections(
                            session,
                            [
                                (call.callpower_campaign_id, call.received_at, call.errors, -1),
                                (call.callpower_campaign_id, call.received_at, delivery.errors, 1),
                            ],
                        )
                        call.errors = delivery.errors
                    continue
                _accept(session, call, delivery, now, source)
                revalidated += 1
                duplicates += call.state == CallState.DUPLICATE
            after = batch[-1].id
    return Revalidated(revalidated=revalidated, duplicates=duplicates, still_rejected=still_rejected)
