"""The deliveries queue: events fanned out to the endpoints that subscribe to them, deliveries
taken (leased) by a deliverer, and what each attempt came to.

Every step is a short transaction, never the intake's: a deliverer reads and writes its own rows
between HTTP requests, and on SQLite takes the write lock for a few milliseconds at a time. A
delivery a deliverer took carries a lease; if the deliverer dies, the lease runs out and another
(or the same, restarted) sends it again: at least once, never lost. On PostgreSQL several
deliverers share the work: each takes endpoints and deliveries with SKIP LOCKED.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.db import table_of
from rollcall.dialect import driver_times, insert_rows, named_rows, update_rows
from rollcall.events import Event, delete_events_before, documents, event_id, last_event_number
from rollcall.logs import keep_secret
from rollcall.times import utcnow
from rollcall.webhooks.models import (
    FAILING_TOO_LONG,
    MAX_ATTEMPTS,
    RETRY_SCHEDULE,
    DeliveryState,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)

FAN_OUT_BATCH = 2000  # events turned into deliveries per endpoint per transaction
# An endpoint with this many deliveries waiting gets no more until some are made: a dead receiver
# costs a few thousand rows, not one per event while it is down (its events wait behind its cursor).
PENDING_CAP = 4 * FAN_OUT_BATCH
_deliveries = table_of(WebhookDelivery)
_attempts = table_of(WebhookAttempt)
_NEW_COLUMNS = (
    "webhook_id",
    "event_id",
    "state",
    "attempts",
    "next_attempt_at",
    "lease_until",
    "created_at",
    "updated_at",
)


def has_work(session: Session, now: dt.datetime) -> bool:
    """Whether there is anything to fan out or send now (a read; the idle deliverer's poll)."""
    top = last_event_number(session)
    behind = session.scalar(
        sa.select(sa.literal(1)).where(Webhook.enabled.is_(True), Webhook.last_event_id < top).limit(1)
    )
    if behind is not None:
        return True
    due = session.scalar(
        sa.select(sa.literal(1))
        .where(
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            sa.or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
        )
        .limit(1)
    )
    return due is not None


def enabled_endpoints(session: Session) -> list[int]:
    return list(session.scalars(sa.select(Webhook.id).where(Webhook.enabled.is_(True)).order_by(Webhook.id)))


def _fan_out(
    session: Session, webhooks: dict[int, Webhook], room: dict[int, int], until: dt.datetime, top: int
) -> list[Any]:
    """For each endpoint with room, a delivery of each event after its cursor that it subscribes
    to (up to its room), made already leased to this deliverer until `until`: the rows of what
    was made. An endpoint another deliverer is fanning out now is skipped (SKIP LOCKED)."""
    wanted = [
        webhook_id for webhook_id, space in room.items() if space > 0 and webhooks[webhook_id].last_event_id < top
    ]
    if not wanted:
        return []
    # Locked, and read again as locked: another deliverer may have moved a cursor since `webhooks`
    # was read (populate_existing refreshes those objects, or the cursor could move backwards).
    locked = session.scalars(
        sa.select(Webhook)
        .where(Webhook.id.in_(wanted), Webhook.enabled.is_(True))
        .order_by(Webhook.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).all()
    time = driver_times(session)
    now, lease = time(utcnow()), time(until)
    made: list[Any] = []
    for webhook in locked:
        webhook_id = webhook.id
        if webhook.last_event_id >= top:
            continue  # another deliverer has fanned it out past what this step saw
        if _backed_up(session, webhook_id):
            continue  # its receiver is not keeping up: the events wait behind its cursor instead
        limit = min(room[webhook_id], FAN_OUT_BATCH)
        numbers = list(
            session.scalars(
                sa.select(Event.id)
                .where(Event.id > webhook.last_event_id, Event.id <= top, Event.type.in_(webhook.events))
                .order_by(Event.id)
                .limit(limit)
            )
        )
        if numbers:
            fresh = {"webhook_id": webhook_id, "state": DeliveryState.PENDING.value, "attempts": 0}
            leased = {"next_attempt_at": now, "lease_until": lease, "created_at": now, "updated_at": now}
            rows = named_rows(_NEW_COLUMNS, [{**fresh, "event_id": number, **leased} for number in numbers])
            made.extend(
                insert_rows(
                    session,
                    _deliveries,
                    _NEW_COLUMNS,
                    rows,
                    returning=("id", "webhook_id", "event_id", "attempts"),
                    conflict="ON CONFLICT DO NOTHING",
                )
            )
        webhook.last_event_id = numbers[-1] if len(numbers) == limit else top
    session.flush()
    return made


def _backed_up(session: Session, webhook_id: int) -> bool:
    """Whether the endpoint already has `PENDING_CAP` deliveries waiting (found on the index, not counted)."""
    return (
        session.scalar(
            sa.select(WebhookDelivery.id)
            .where(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.webhook_id == webhook_id)
            .offset(PENDING_CAP - 1)
            .limit(1)
        )
        is not None
    )


@dataclass(frozen=True)
class Taken:
    """A delivery a deliverer holds: where to send what, and with which secrets."""

    delivery_id: int
    webhook_id: int
    url: str
    secrets: tuple[str, ...]  # the current secret, and the one it replaced while it still signs
    event_id: str
    event_created_at: dt.datetime
    body: bytes  # {"type", "timestamp", "data"}
    attempt: int  # which attempt this is (1 for the first)
    lease_until: dt.datetime  # past this, another deliverer may take it: not to be sent after


def take(session: Session, room: dict[int, int], lease: dt.timedelta) -> list[Taken]:
    """Up to `room[webhook_id]` deliveries for each endpoint (what it may have in flight), leased
    to this deliverer until `lease` from now: first those due (retries, and those a vanished
    deliverer held), then new events fanned out into the room left."""
    now = utcnow()
    until = now + lease
    top = last_event_number(session)
    webhooks = {
        webhook.id: webhook
        for webhook in session.scalars(sa.select(Webhook).where(Webhook.enabled.is_(True), Webhook.id.in_(list(room))))
    }
    room = {webhook_id: space for webhook_id, space in room.items() if webhook_id in webhooks and space > 0}
    chosen: list[Any] = []  # rows of what a delivery needs, not ORM objects (read for every send)
    for webhook_id, space in room.items():
        due = session.execute(
            sa.select(
                WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.event_id, WebhookDelivery.attempts
            )
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.next_attempt_at <= now,
                sa.or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(space)
            .with_for_update(skip_locked=True)
        ).all()
        room[webhook_id] = space - len(due)
        chosen.extend(due)
    if chosen:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_([row[0] for row in chosen]))
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )
    chosen.extend(_fan_out(session, webhooks, room, until, top))
    if not chosen:
        return []
    events = {
        event.id: event for event in session.scalars(sa.select(Event).where(Event.id.in_({row[2] for row in chosen})))
    }
    shown = dict(zip(events, documents(session, list(events.values())), strict=True))
    taken = []
    for delivery_id, webhook_id, event_number, attempts in chosen:
        event = events.get(event_number)
        if event is None:  # no longer kept (the retention went past it): nothing to send
            continue
        webhook = webhooks[webhook_id]
        document = shown[event.id]
        body = orjson.dumps({"type": document["type"], "timestamp": document["timestamp"], "data": document["data"]})
        signing: tuple[str, ...] = (webhook.secret,)
        if webhook.previous_secret and webhook.previous_secret_until and webhook.previous_secret_until > now:
            signing = (webhook.secret, webhook.previous_secret)
        keep_secret(*signing)
        taken.append(
            Taken(
                delivery_id,
                webhook.id,
                webhook.url,
                signing,
                event_id(event.id),
                event.created_at,
                body,
                attempts + 1,
                until,
            )  # fmt: skip
        )
    return taken


def renew(session: Session, delivery_ids: Sequence[int], until: dt.datetime) -> None:
    """Keep deliveries that are still out leased to this deliverer until `until` (a slow
    receiver's attempt outlives the lease it was taken with)."""
    if delivery_ids:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(delivery_ids)), WebhookDelivery.state == DeliveryState.PENDING)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )


def release(session: Session, delivery_ids: Sequence[int]) -> None:
    """Give back deliveries taken but not sent (a deliverer stopping): due again at once."""
    if delivery_ids:
        session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(list(delivery_ids)))
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class Attempt:
    """What sending one delivery came to."""

    taken: Taken
    at: dt.datetime
    status_code: int | None  # None: no answer (refused, timed out, the address was refused)
    duration_ms: float
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def next_attempt_after(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When the next attempt comes after `attempts` failed ones (None: no more), with jitter."""
    if attempts >= MAX_ATTEMPTS:
        return None
    wait = RETRY_SCHEDULE[attempts]
    return now + wait * random.uniform(0.9, 1.1)  # noqa: S311 (spreading retries, not secrets)


def record(session: Session, attempts: Sequence[Attempt]) -> None:
    """Each attempt, and what it means for its delivery and endpoint: delivered; retried later
    with backoff; given up (`failed`) after the last attempt; an endpoint that answered 410 Gone,
    or has failed for `FAILING_TOO_LONG` with no success between, disabled."""
    if not attempts:
        return
    # Deliveries of an endpoint removed meanwhile are gone with it: nothing to record for them.
    # The rest are locked until this transaction ends (a removal waits for it).
    kept = set(
        session.scalars(
            sa.select(WebhookDelivery.id)
            .where(WebhookDelivery.id.in_([attempt.taken.delivery_id for attempt in attempts]))
            .with_for_update()
        )
    )
    attempts = [attempt for attempt in attempts if attempt.taken.delivery_id in kept]
    if not attempts:
        return
    now = utcnow()
    time = driver_times(session)
    changes = []
    for attempt in attempts:
        retry_at = None
        if not attempt.delivered and not attempt.gone:
            retry_at = next_attempt_after(attempt.taken.attempt, now)
        state = (
            DeliveryState.DELIVERED
            if attempt.delivered
            else DeliveryState.PENDING
            if retry_at
            else DeliveryState.FAILED
        )
        changes.append(
            {
                "attempts": attempt.taken.attempt,
                "lease_until": None,  # no longer held
                "last_status": attempt.status_code,
                "last_error": attempt.error,
                "updated_at": time(now),
                "state": state.value,
                "delivered_at": time(attempt.at) if attempt.delivered else None,
                "next_attempt_at": time(retry_at),
                "id": attempt.taken.delivery_id,  # the key `update_rows` matches, last
            }
        )
    columns = tuple(changes[0])
    update_rows(session, _deliveries, columns[:-1], named_rows(columns, changes))
    # After the update: the attempts' foreign key then finds its delivery already locked by this
    # transaction (before it, PostgreSQL locked each row for the key check, then updated it).
    insert_rows(
        session,
        _attempts,
        ("delivery_id", "at", "status_code", "duration_ms", "error"),
        [(a.taken.delivery_id, time(a.at), a.status_code, a.duration_ms, a.error) for a in attempts],
    )
    by_endpoint: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_endpoint.setdefault(attempt.taken.webhook_id, []).append(attempt)
    for webhook_id, done in by_endpoint.items():
        webhook = session.get(Webhook, webhook_id)
        if webhook is None:
            continue
        last = max(done, key=lambda a: a.at)
        if last.delivered:
            webhook.last_success_at, webhook.failing_since = last.at, None
        else:
            webhook.last_failure_at = last.at
            webhook.failing_since = webhook.failing_since or last.at
        if any(a.gone for a in done) and webhook.enabled:
            webhook.enabled, webhook.disabled_reason = False, "the receiver answered 410 Gone"
        elif webhook.failing_since and now - webhook.failing_since > FAILING_TOO_LONG and webhook.enabled:
            webhook.enabled = False
            webhook.disabled_reason = f"every delivery failed for {FAILING_TOO_LONG.days} days"
    session.flush()


# Events behind one endpoint's cursor counted at most: a dead receiver's pile is not counted
# whole at every look at the Webhooks page or the metrics (100,000 take a few milliseconds).
BEHIND_COUNTED = 100_000


def behind(session: Session, webhooks: Sequence[Webhook]) -> dict[int, tuple[int, dt.datetime | None]]:
    """For each enabled endpoint, the events after its cursor that it subscribes to (not yet
    fanned out: a step makes deliveries only as fast as they are sent), and when the oldest was
    made; up to `BEHIND_COUNTED` of them."""
    found: dict[int, tuple[int, dt.datetime | None]] = {}
    for webhook in webhooks:
        if not webhook.enabled:
            continue
        wanted = sa.select(Event.id, Event.created_at).where(
            Event.id > webhook.last_event_id, Event.type.in_(webhook.events)
        )
        oldest = session.scalar(wanted.with_only_columns(Event.created_at).order_by(Event.id).limit(1))
        if oldest is None:
            continue
        count = session.scalar(sa.select(sa.func.count()).select_from(wanted.limit(BEHIND_COUNTED).subquery()))
        found[webhook.id] = (int(count or 0), oldest)
    return found


def waiting(session: Session) -> tuple[int, dt.datetime | None]:
    """Events not yet delivered to an endpoint that wants them (deliveries pending, and events
    behind enabled endpoints' cursors), and when the oldest of them was made to wait."""
    count, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(WebhookDelivery.created_at)).where(
            WebhookDelivery.state == DeliveryState.PENDING
        )
    ).one()
    total, times = int(count), [oldest] if oldest else []
    for events, first in behind(session, list(session.scalars(sa.select(Webhook)))).values():
        total += events
        times += [first] if first else []
    return total, min(times) if times else None


def forget_old(session: Session, retention: dt.timedelta, *, limit: int = 5000) -> int:
    """The retention: events older than it, and their deliveries, go (a batch at a time)."""
    cutoff = utcnow() - retention
    oldest = session.execute(sa.select(Event.id, Event.created_at).order_by(Event.id).limit(limit)).all()
    numbers = [number for number, created_at in oldest if created_at < cutoff]
    if numbers:  # by endpoint, along the index on (webhook_id, event_id)
        webhook_ids = list(session.scalars(sa.select(Webhook.id)))
        session.execute(
            sa.delete(WebhookDelivery).where(
                WebhookDelivery.webhook_id.in_(webhook_ids), WebhookDelivery.event_id <= numbers[-1]
            )
        )
    return delete_events_before(session, cutoff, limit=limit)
