"""Webhook endpoints, the deliveries of events to them, and each attempt at one."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Mapped, mapped_column

from rollcall.db import Base, JSONDocument, UTCDateTime
from rollcall.documents import Document
from rollcall.events import EventType
from rollcall.fields import STORABLE_TEXT
from rollcall.times import utcnow

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Standard Webhooks senders retry on this schedule: at once, then after each wait in turn.
RETRY_SCHEDULE = (
    dt.timedelta(0),
    dt.timedelta(seconds=5),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
    dt.timedelta(hours=5),
    dt.timedelta(hours=10),
    dt.timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE)
# An endpoint whose deliveries keep failing this long, with no success between, is disabled.
FAILING_TOO_LONG = dt.timedelta(days=5)
# Events an endpoint may subscribe to (the test event is sent on request only).
SUBSCRIBABLE = tuple(kind for kind in EventType if kind != EventType.WEBHOOK_TEST)
OPERATOR_DISABLED = "disabled by an operator"  # the reason given when it was not rollcall that did


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # to be sent (now, or at next_attempt_at after a failed attempt)
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # every attempt failed, or the endpoint answered 410 Gone


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    events: Mapped[list[str]] = mapped_column(JSONDocument)
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    # `whsec_` and base64: the signing secret; the one it replaced signs beside it for a while.
    secret: Mapped[str] = mapped_column(sa.String(128))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The last event considered for this endpoint: deliveries are made for those after it.
    last_event_id: Mapped[int] = mapped_column(_BigId, default=0)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the current run of failures
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_event"),
        sa.Index("ix_webhook_deliveries_state_webhook_next", "state", "webhook_id", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(sa.BigInteger)
    state: Mapped[str] = mapped_column(sa.String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A deliverer that took it sends it before this; past it, another deliverer may (it vanished).
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    duration_ms: Mapped[float] = mapped_column(sa.Float)
    error: Mapped[str | None] = mapped_column(sa.Text)


# -- shapes of the staff API ------------------------------------------------------------------

_Description = Annotated[str, StringConstraints(max_length=500, pattern=STORABLE_TEXT)]
_Url = Annotated[AnyUrl, Field(description="https:// (http:// only with ROLLCALL_WEBHOOKS_ALLOW_HTTP)")]
_Events = Annotated[list[EventType], Field(min_length=1, description="The event types it receives.")]


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: _Url
    events: _Events
    description: _Description | None = None


class WebhookChanges(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    url: _Url = None  # type: ignore[assignment]  # absent means unchanged; null is refused
    events: _Events = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]
    description: _Description | None = None


class WebhookDocument(Document):
    id: int
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(description="Why it was disabled (410 Gone, failing for days, an operator).")
    health: str = Field(description="healthy, failing (its last attempt failed), or disabled.")
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    failing_since: dt.datetime | None
    waiting: int = Field(
        description="Events it has not yet received: deliveries pending, and events not yet taken for it"
        " (those counted up to 100,000)."
    )
    failed: int = Field(description="Deliveries that gave up.")
    created_at: dt.datetime
    updated_at: dt.datetime


class WebhookWithSecret(WebhookDocument):
    secret: str = Field(description="The signing secret (whsec_...): shown this once.")


class AttemptDocument(Document):
    at: dt.datetime
    status_code: int | None
    duration_ms: float
    error: str | None


class DeliveryDocument(Document):
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    attempt_log: list[AttemptDocument] = Field(description="Its attempts, newest first.")


def health_of(webhook: Webhook) -> str:
    if not webhook.enabled:
        return "disabled"
    if webhook.failing_since is not None:
        return "failing"
    return "healthy"


def webhook_shape(webhook: Webhook, *, waiting: int, failed: int) -> dict[str, Any]:
    """What a `WebhookDocument` is read from: the row, and what is counted beside it."""
    fields = {column: getattr(webhook, column) for column in WebhookDocument.model_fields if hasattr(webhook, column)}
    return {**fields, "health": health_of(webhook), "waiting": waiting, "failed": failed}
