"""The stored call: every authenticated delivery a source made, and what became of it; the kept
counts of calls; the shapes the staff API shows them in."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from pydantic import AliasChoices, BaseModel, Field, computed_field
from sqlalchemy.orm import Mapped, mapped_column

from rollcall.activity.models import USER_ID_LENGTH
from rollcall.db import Base, JSONDocument, UTCDateTime
from rollcall.documents import Document
from rollcall.fields import TEXT_LENGTH
from rollcall.times import utcnow


class CallState(enum.StrEnum):
    RECEIVED = "received"  # stored, waiting for the importer
    IMPORTED = "imported"  # became a post
    DISCARDED = "discarded"  # anonymous caller: nobody to credit
    UNMAPPED = "unmapped"  # no action has its CallPower campaign id yet; waits for one
    FAILED = "failed"  # an unexpected error; retried with exponential backoff
    DEAD = "dead"  # failed too many times; waits for an operator's retry
    REJECTED = "rejected"  # the record broke the contract (answered 4xx); kept for operators
    DUPLICATE = "duplicate"  # repaired into a call already stored (`duplicate_of`): never a second post
    ERASED = "erased"  # its member was erased: only its id, campaign, time and key are left


# The conditions of the calls' partial indexes, word for word as queries must repeat them (SQLite
# uses a partial index only for a query whose WHERE has the index's own terms, literals included):
# by mobile once the importer has seen the call; the new calls, in the order they came; the failed
# calls waiting for their retry time; the calls parked until an operator acts.
SEEN_BY_IMPORTER = "state != 'received'"
NEW = "state = 'received'"
RETRYING = "state = 'failed'"
PARKED = "state IN ('rejected', 'unmapped')"

# How much of an error message a rejection count keeps as its reason.
REASON_LENGTH = 500

# States the importer picks up by itself.
WAITING_STATES = (CallState.RECEIVED, CallState.FAILED)
# States an operator may send back to the importer.
RETRYABLE_STATES = (CallState.FAILED, CallState.DEAD, CallState.UNMAPPED)


class ClaimedCall(NamedTuple):
    """A call an importer holds: what its import needs, and what its counts need."""

    id: int
    record: dict[str, Any]
    attempts: int
    state: str
    callpower_campaign_id: int | None
    received_at: dt.datetime


@dataclass(frozen=True)
class ImportOutcome:
    """What one import made of a call: the state it ends in and, if imported, what it became."""

    state: CallState
    user_id: str | None = None
    signup_id: int | None = None
    post_id: int | None = None


class CampaignCount(Base):
    """Stored calls of a CallPower campaign in a state (calls that named no campaign are only in
    `DayCount`). Changed in the transaction that changes a call's state (`statistics.count`)."""

    __tablename__ = "call_counts_by_campaign"

    callpower_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(sa.BigInteger)


class DayCount(Base):
    """Stored calls received on a day (UTC) that are in a state; every call is in one row."""

    __tablename__ = "call_counts_by_day"

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(sa.BigInteger)


class RejectionCount(Base):
    """Rejected calls of a CallPower campaign (0: they named none) received on a day that have a
    problem (an error message; a call with several is counted under each)."""

    __tablename__ = "call_rejections_by_reason"

    callpower_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(REASON_LENGTH), primary_key=True)
    calls: Mapped[int] = mapped_column(sa.BigInteger)


def problem_of(state: str, errors: dict[str, list[str]] | None, last_error: str | None) -> str | None:
    """What is wrong with a call now: why a rejected call is refused, why a failed or dead one
    failed; None once it is mended (a repaired call keeps its old `errors` beside its repairs)."""
    if state == CallState.REJECTED:
        return "; ".join(message for messages in (errors or {}).values() for message in messages) or None
    if state in (CallState.FAILED, CallState.DEAD):
        return last_error
    return None


def _partial(name: str, *columns: str, where: str) -> sa.Index:
    """An index over the rows that meet `where` (one of the conditions above), on both databases."""
    return sa.Index(name, *columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        # Every index here is written by each call the intake stores or the importer moves, so
        # only what a query reads is kept (migration 0014 dropped the rest). The importer's queue
        # and the parked calls are partial indexes over the few calls in those states (kept
        # exact for PostgreSQL, whose planner otherwise walks the calls in id order and skips
        # every imported one while a backlog is worked off: linear in the table).
        _partial("ix_calls_new", "id", where=NEW),
        _partial("ix_calls_retrying", "state", "next_attempt_at", "id", where=RETRYING),
        _partial("ix_calls_parked", "state", "callpower_campaign_id", "id", where=PARKED),
        # Lists, newest first: by state, by CallPower campaign, by mobile.
        sa.Index("ix_calls_state_id", "state", "id"),
        sa.Index("ix_calls_callpower_campaign_id_id", "callpower_campaign_id", "id"),
        # By mobile only once the importer has seen the call: members' mobiles come in no order,
        # so this index is written all over, and the intake's commits stay clear of that (calls
        # still waiting are found through ix_calls_state_id). See `list_calls`.
        _partial("ix_calls_mobile_id", "mobile", "id", where=SEEN_BY_IMPORTER),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(16))
    # The call's time, then a keyed digest of its normalized record (`Source.dedup_key`): a second
    # delivery of the same call is not stored again. None for a refused or a duplicate call.
    dedup_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The body exactly as it arrived (text), with unknown extra fields, and how it was encoded.
    raw: Mapped[str] = mapped_column(sa.Text)
    content_type: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    # The validated, normalized record (null when rejected) and the validation errors (when rejected).
    record: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    errors: Mapped[dict[str, list[str]] | None] = mapped_column(JSONDocument)
    callpower_campaign_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    callpower_campaign_name: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    mobile: Mapped[str | None] = mapped_column(sa.String(32))
    call_timestamp: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Import bookkeeping.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    imported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # What the call became.
    user_id: Mapped[str | None] = mapped_column(sa.String(USER_ID_LENGTH))
    signup_id: Mapped[int | None] = mapped_column(sa.Integer)
    post_id: Mapped[int | None] = mapped_column(sa.Integer)
    # An operator's corrections of a rejected call, oldest first: [{"at": ..., "fields": {...}}].
    # The body as received (`raw`) is never changed.
    repairs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDocument)
    # The fields its CallPower campaign's defaults completed.
    defaulted: Mapped[list[str] | None] = mapped_column(JSONDocument)
    # A repaired call that equals a call stored before: that call's id.
    duplicate_of: Mapped[int | None] = mapped_column(sa.Integer)
    # When the retention removed its body, record and repairs (ROLLCALL_CALL_BODY_RETENTION_DAYS).
    body_removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def problem(self) -> str | None:
        return problem_of(self.state, self.errors, self.last_error)


# -- shapes of the staff API ------------------------------------------------------------------


class Repair(BaseModel):
    at: dt.datetime
    fields: dict[str, Any] = Field(description="The values given; null removes a field.")


class CallDocument(Document):
    id: int
    state: CallState
    callpower_campaign_id: int | None
    callpower_campaign_name: str | None
    mobile: str | None
    call_timestamp: dt.datetime | None
    received_at: dt.datetime
    updated_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime | None = Field(description="When a failed call is tried again.")
    last_error: str | None = Field(description="Why the last import attempt failed.")
    errors: dict[str, list[str]] | None = Field(
        description="Why the delivery was rejected (kept once it is repaired, beside the repairs)."
    )
    record: dict[str, Any] | None = Field(description="The validated, normalized record.")
    raw: str = Field(description="The body exactly as it arrived.")
    content_type: str | None
    imported_at: dt.datetime | None
    northstar_id: str | None = Field(
        validation_alias=AliasChoices("user_id", "northstar_id"), description="The user the call was credited to."
    )
    signup_id: int | None
    post_id: int | None
    repairs: list[Repair] | None = Field(description="Operators' corrections of the rejected call, oldest first.")
    defaulted: list[str] | None = Field(description="Fields completed by its CallPower campaign's defaults.")
    duplicate_of: int | None = Field(description="The stored call a repaired call turned out to be.")
    body_removed_at: dt.datetime | None = Field(
        description="When the body, record and repairs were removed, past ROLLCALL_CALL_BODY_RETENTION_DAYS."
    )

    @computed_field(  # type: ignore[prop-decorator]
        description="What is wrong with it now: why a rejected call is refused, why a failed or dead one "
        "failed; null once it is mended."
    )
    @property
    def problem(self) -> str | None:
        return problem_of(self.state, self.errors, self.last_error)


class Revalidated(BaseModel):
    revalidated: int = Field(description="Rejected calls that now pass: sent to the importer, or duplicates.")
    duplicates: int = Field(description="Of those, calls equal to a call stored before (no second post).")
    still_rejected: int


class Retried(BaseModel):
    retried: int
