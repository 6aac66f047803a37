"""Mending what a partner sent with a flaw: repairing a rejected call, and revalidating a
CallPower campaign's rejected calls with its defaults (`campaigns.set_campaign_defaults`).

CallPower never sends a call again once it was answered non-2xx, so a rejected call can only
become a post here. Every way back goes through the one validator (`record.parse_call`) with
the body as received: a repair lays the operator's corrections over it, a default fills a
descriptive field it lacks. The received body is never changed; corrections are kept beside it
(`Call.repairs`), defaulted fields are named (`Call.defaulted`). A call that turns out equal to
one stored before becomes a `duplicate` of it, never a second post.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.callpower import campaigns, statistics
from rollcall.callpower.calls import get_call
from rollcall.callpower.deliveries import Delivery, UnreadableBody, decode_json, decode_payload, keyed
from rollcall.callpower.models import Call, CallState
from rollcall.callpower.record import CONTRACT_FIELDS, InvalidCall, campaign_id_of
from rollcall.db import Database
from rollcall.dialect import announce_calls
from rollcall.errors import Conflict, InvalidInput
from rollcall.times import iso_utc, utcnow

# Rejected calls revalidated per transaction: short, so the intake's writer never waits long.
REVALIDATE_BATCH = 200
# File imports keep each line as JSON text (a CSV row as the object of its fields).
_JSON_LINES = ("application/x-ndjson", "text/csv")


class CallNotRepairable(Conflict):
    def __init__(self, call_id: int, state: str) -> None:
        super().__init__(f"Call {call_id} is {state}; only rejected calls can be repaired.")


def received_payload(call: Call) -> dict[str, Any] | None:
    """The fields of the body as it was received, read as the intake read them; None when the
    body could not be read at all (not JSON, or neither JSON nor a form)."""
    try:
        if call.content_type in _JSON_LINES:
            payload = decode_json(call.raw.encode("utf-8"))
        else:
            payload = decode_payload(call.raw.encode("utf-8"), call.content_type)
    except UnreadableBody:
        return None
    return payload if isinstance(payload, dict) else None


def _validated(session: Session, call: Call, payload: Mapping[str, Any], region: str) -> Delivery:
    """The delivery `payload` makes, completed by its CallPower campaign's defaults."""
    campaign = campaign_id_of(payload)
    defaults = campaigns.defaults_of(session, [campaign]).get(campaign, {}) if campaign is not None else {}
    return Delivery.of_payload(payload, raw=call.raw, content_type=call.content_type, region=region, defaults=defaults)


def _accept(session: Session, call: Call, delivery: Delivery, now: dt.datetime) -> None:
    """A rejected call that passes now: `received` (the importer takes it), or `duplicate` of the
    stored call it equals. Its counts follow it (to its campaign as repaired)."""
    [delivery] = keyed(session, [delivery])
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
    call.callpower_campaign_id = delivery.callpower_campaign_id
    call.callpower_campaign_name = delivery.document["callpower_campaign_name"]
    call.mobile = delivery.document["mobile"]
    call.call_timestamp = delivery.call_timestamp
    call.defaulted = delivery.defaulted
    call.updated_at = now
    campaigns.note_stored_calls(session, [delivery], call.received_at)
    statistics.count(
        session,
        [
            (previous_campaign, call.received_at, CallState.REJECTED, -1),
            (delivery.callpower_campaign_id, call.received_at, call.state, 1),
        ],
    )
    statistics.count_rejections(session, [(previous_campaign, call.received_at, call.errors, -1)])
    session.flush()


def repair_call(session: Session, call_id: int, fields: Mapping[str, Any], *, region: str) -> Call:
    """Correct a rejected call: its received body with `fields` laid over it (a null removes a
    field) goes through the validator. Still invalid: `InvalidCall` naming the fields, and the
    call stays rejected. Valid: it goes to the importer (or is a `duplicate`), and the
    correction is kept with its time."""
    call = get_call(session, call_id, for_update=True)
    if call.state != CallState.REJECTED:
        raise CallNotRepairable(call_id, call.state)
    unknown = {name: [f"{name} is not a field of a call record."] for name in fields if name not in CONTRACT_FIELDS}
    if unknown:
        raise InvalidInput(unknown)
    payload = {**(received_payload(call) or {}), **fields}
    delivery = _validated(session, call, payload, region)
    if delivery.document is None:
        raise InvalidCall(delivery.errors or {})
    now = utcnow()
    _accept(session, call, delivery, now)
    call.repairs = [*(call.repairs or []), {"at": iso_utc(now), "fields": dict(fields)}]
    session.flush()
    return call


@dataclass(frozen=True)
class Revalidation:
    revalidated: int  # now pass: sent to the importer, or duplicates
    duplicates: int  # of those, equal to a call stored before
    still_rejected: int


def revalidate_calls(database: Database, callpower_campaign_id: int, *, region: str) -> Revalidation:
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
                    Call.callpower_campaign_id == callpower_campaign_id,
                    Call.id > after,
                )
                .order_by(Call.id)
                .limit(REVALIDATE_BATCH)
                .with_for_update()
            ).all()
            if not batch:
                break
            now = utcnow()
            for call in batch:
                payload = received_payload(call)
                delivery = _validated(session, call, payload, region) if payload is not None else None
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
                _accept(session, call, delivery, now)
                revalidated += 1
                duplicates += call.state == CallState.DUPLICATE
            after = batch[-1].id
    return Revalidation(revalidated, duplicates, still_rejected)
