"""Webhook endpoints as operators manage them: add one (with its signing secret, shown once),
change, remove, rotate the secret, list the deliveries and retry one, send a test event.

A URL is checked when it is given or changed and again at each connection
(`deliverer.GuardedBackend`), by the one policy in `addresses.py`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.config import Settings
from rollcall.db import row_of
from rollcall.errors import Conflict, InvalidInput, NotFound
from rollcall.events import Event, EventType, event_id, last_event_number, record_events
from rollcall.paging import Page, PageRequest, count, keyset_page
from rollcall.times import utcnow
from rollcall.webhooks import addresses, queue
from rollcall.webhooks.models import (
    OPERATOR_DISABLED,
    SUBSCRIBABLE,
    AttemptDocument,
    DeliveryDocument,
    DeliveryState,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    webhook_shape,
)
from rollcall.webhooks.troubled import Troubled

SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = dt.timedelta(hours=24)  # the old secret keeps signing beside the new one
RECENT_ATTEMPTS = 10  # shown with each delivery


class UnsafeAddress(InvalidInput):
    """The URL's host is, or resolves to, an address rollcall must not send to."""

    def __init__(self, message: str) -> None:
        super().__init__({"url": [message]})


def new_secret() -> str:
    """A signing secret as Standard Webhooks spells one: `whsec_` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


# -- where deliveries may go --------------------------------------------------------------------


def check_url(url: str, settings: Settings) -> str:
    """The URL, if rollcall may send webhooks to it (`addresses.check_url`); `UnsafeAddress` (a 422) if not."""
    try:
        return addresses.check_url(
            url, allow_http=settings.webhooks_allow_http, allow_private=settings.webhooks_allow_private
        )
    except addresses.UnsafeURL as unsafe:
        raise UnsafeAddress(str(unsafe)) from None


# -- the endpoints ------------------------------------------------------------------------------


def _subscriptions(events: Sequence[str]) -> list[str]:
    unknown = [kind for kind in events if kind not in SUBSCRIBABLE]
    if unknown:
        raise InvalidInput({"events": [f"{kind!r} is not an event type one can subscribe to." for kind in unknown]})
    order: list[str] = list(SUBSCRIBABLE)
    return sorted(set(events), key=order.index)


def create_webhook(
    session: Session, *, url: str, events: Sequence[str], description: str | None, settings: Settings
) -> tuple[Webhook, str]:
    """A new endpoint, receiving the events that happen from now on; and its secret."""
    secret = new_secret()
    webhook = Webhook(
        url=check_url(url, settings),
        events=_subscriptions(events),
        description=description,
        enabled=True,
        secret=secret,
        last_event_id=last_event_number(session),
    )
    session.add(webhook)
    session.flush()
    return webhook, secret


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    return row_of(session, Webhook, webhook_id, "webhook")


def update_webhook(session: Session, webhook_id: int, changes: dict[str, Any], settings: Settings) -> Webhook:
    """Change the URL, the events or `enabled` (enabling again clears why it was disabled)."""
    webhook = get_webhook(session, webhook_id)
    if "url" in changes:
        webhook.url = check_url(str(changes["url"]), settings)
    if "events" in changes:
        webhook.events = _subscriptions(changes["events"])
    if "description" in changes:
        webhook.description = changes["description"]
    if "enabled" in changes:
        if changes["enabled"] and not webhook.enabled:
            webhook.disabled_reason = None
            webhook.failing_since = None
        elif not changes["enabled"] and webhook.enabled:
            webhook.disabled_reason = OPERATOR_DISABLED
        webhook.enabled = bool(changes["enabled"])
    session.flush()
    return webhook


def delete_webhook(session: Session, webhook_id: int) -> None:
    webhook = get_webhook(session, webhook_id)
    session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
    session.delete(webhook)
    session.flush()


def rotate_secret(session: Session, webhook_id: int) -> tuple[Webhook, str]:
    """A new secret; the one it replaces keeps signing beside it for `ROTATION_OVERLAP`."""
    webhook = get_webhook(session, webhook_id)
    secret = new_secret()
    webhook.previous_secret, webhook.previous_secret_until = webhook.secret, utcnow() + ROTATION_OVERLAP
    webhook.secret = secret
    session.flush()
    return webhook, secret


def counts(session: Session, webhooks: Sequence[Webhook]) -> dict[int, dict[str, int]]:
    """Events waiting (deliveries pending, and events behind its cursor) and deliveries given up, by endpoint."""
    webhook_ids = [webhook.id for webhook in webhooks]
    found = {id_: {"waiting": 0, "failed": 0} for id_ in webhook_ids}
    if webhook_ids:
        rows = session.execute(
            sa.select(WebhookDelivery.webhook_id, WebhookDelivery.state, sa.func.count())
            .where(
                WebhookDelivery.webhook_id.in_(webhook_ids),
                WebhookDelivery.state.in_([DeliveryState.PENDING, DeliveryState.FAILED]),
            )
            .group_by(WebhookDelivery.webhook_id, WebhookDelivery.state)
        )
        for webhook_id, state, count in rows:
            found[webhook_id]["waiting" if state == DeliveryState.PENDING else "failed"] = count
        for webhook_id, (events, _) in queue.behind(session, webhooks).items():
            found[webhook_id]["waiting"] += events
    return found


def shapes(session: Session, webhooks: Sequence[Webhook]) -> list[dict[str, Any]]:
    """What each endpoint's document is read from: the row, its health and its counts."""
    counted = counts(session, webhooks)
    return [webhook_shape(webhook, **counted[webhook.id]) for webhook in webhooks]


def list_webhooks(session: Session, page: PageRequest) -> Page[Webhook]:
    return keyset_page(session, sa.select(Webhook), [Webhook.id], page, lambda w: (w.id,))


def count_webhooks(session: Session) -> int:
    return count(session, sa.select(Webhook))


def disabled_by_rollcall(session: Session) -> list[Webhook]:
    """Endpoints rollcall disabled itself (410 Gone, days of failures): operators must hear of them."""
    return list(
        session.scalars(
            sa.select(Webhook)
            .where(~Webhook.enabled, Webhook.disabled_reason != OPERATOR_DISABLED)
            .order_by(Webhook.id)
        )
    )


# -- its deliveries -----------------------------------------------------------------------------


def list_deliveries(session: Session, webhook_id: int, page: PageRequest, *, only: Troubled | None = None) -> Page[Any]:
    """An endpoint's deliveries, newest first, each with its latest attempts."""
    get_webhook(session, webhook_id)
    query = sa.select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    retrying = sa.and_(WebhookDelivery.state == DeliveryState.PENDING, WebhookDelivery.attempts > 0)
    if only == Troubled.FAILED:
        query = query.where(WebhookDelivery.state == DeliveryState.FAILED)
    elif only == Troubled.RETRYING:
        query = query.where(retrying)
    elif only == Troubled.FAILING:
        query = query.where(sa.or_(WebhookDelivery.state == DeliveryState.FAILED, retrying))
    found = keyset_page(session, query, [WebhookDelivery.id], page, lambda d: (d.id,))
    return Page(views(session, found.items), found.next, found.prev)


def views(session: Session, deliveries: Sequence[WebhookDelivery]) -> list[DeliveryDocument]:
    """Deliveries as they are shown: each with its event and its latest attempts."""
    ids = [delivery.id for delivery in deliveries]
    types = dict(
        session.execute(sa.select(Event.id, Event.type).where(Event.id.in_([d.event_id for d in deliveries]))).all()
    )
    attempts: dict[int, list[WebhookAttempt]] = {id_: [] for id_ in ids}
    if ids:
        for attempt in session.scalars(
            sa.select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(ids)).order_by(WebhookAttempt.id.desc())
        ):
            if len(attempts[attempt.delivery_id]) < RECENT_ATTEMPTS:
                attempts[attempt.delivery_id].append(attempt)
    return [
        DeliveryDocument(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_id=event_id(delivery.event_id),
            event_type=types.get(delivery.event_id, "(no longer kept)"),
            state=DeliveryState(delivery.state),
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
            attempt_log=[AttemptDocument.model_validate(attempt) for attempt in attempts[delivery.id]],
        )
        for delivery in deliveries
    ]


def retry_delivery(session: Session, webhook_id: int, delivery_id: int) -> DeliveryDocument:
    """Send a delivery again now, with a fresh schedule of attempts (a delivered one is 409)."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound("delivery", delivery_id)
    if delivery.state == DeliveryState.DELIVERED:
        raise Conflict(f"Delivery {delivery_id} was delivered; only pending or failed deliveries can be retried.")
    now = utcnow()
    delivery.state, delivery.attempts, delivery.next_attempt_at = DeliveryState.PENDING, 0, now
    delivery.lease_until, delivery.updated_at = None, now
    session.flush()
    return views(session, [delivery])[0]


def send_test_event(session: Session, webhook_id: int) -> DeliveryDocument:
    """A `webhook.test` event, delivered to this endpoint alone (now, whatever it subscribes to)."""
    webhook = get_webhook(session, webhook_id)
    data = {"webhook_id": webhook.id, "message": "A test event from rollcall: your endpoint is reached."}
    [number] = record_events(session, [(EventType.WEBHOOK_TEST, webhook.id, data)])
    now = utcnow()
    delivery = WebhookDelivery(
        webhook_id=webhook.id,
        event_id=number,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(delivery)
    session.flush()
    return views(session, [delivery])[0]
