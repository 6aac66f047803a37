"""The seam between the call pipeline and whatever sends calls.

The pipeline (this package: storing deliveries, the writer, the import queue, repairs,
retention, the kept counts) knows a source of calls only through `Source`: it reads a body into a
delivery (a record, or the errors that refuse it), reads a stored body back, makes the
de-duplication key of a record, gives its campaigns' defaults, notes what was stored, and says
what a stored record means for the member who called (`CallFacts`). CallPower's contract is one
source (`callpower.source`); a test source of a few lines drives the same pipeline
(tests/core/test_pipeline.py).

A source's campaign is what an action receives calls of (`Action.callpower_campaign_id`, the
column keeping the name of the one source there is; so do the calls' own columns).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session

from rollcall.calls.models import CallState
from rollcall.dialect import driver_json


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


Target = tuple[str | None, str | None, str | None]  # name, title, district
Reported = tuple[str, int, Target]  # status, seconds, target


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a stored record means for the member who called: who, which campaign, when, how it
    went (a completed call is an accepted post; the status as the source says it), for how long,
    to whom, and the post's details."""

    mobile: str
    campaign_id: int
    call_timestamp: dt.datetime | None
    anonymous: bool  # nobody to credit: the call is discarded
    completed: bool
    details: dict[str, Any]
    status: str = ""
    seconds: int = 0
    target: Target = (None, None, None)


class Source(Protocol):
    """What the pipeline needs of a source of calls."""

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields of its record (what a repair may set)."""
        ...

    def delivery(self, body: bytes, content_type: str | None) -> Delivery:
        """What a body makes: a valid record, or the errors that refuse it; never raises for what
        a client sent."""
        ...

    def check(
        self, payload: Any, *, raw: str, content_type: str | None, defaults: Mapping[str, str] | None = None
    ) -> Delivery:
        """A decoded payload validated (completed first by `defaults` when given)."""
        ...

    def read_back(self, raw: str, content_type: str | None) -> dict[str, Any] | None:
        """The fields of a stored body, read as they were when it came; None if it could not be read."""
        ...

    def dedup_key(self, document: dict[str, Any], secret: bytes) -> str:
        """Equal for two deliveries of the same call (keyed with the database's secret)."""
        ...

    def defaults_of(self, session: Session, campaign_ids: Collection[int | None]) -> dict[int, dict[str, str]]:
        """Its campaigns' defaults for the fields their calls may lack."""
        ...

    def note_stored(self, session: Session, stored: Sequence[Delivery], received_at: dt.datetime) -> None:
        """What the source keeps of what was stored (its campaigns seen, their names and spans)."""
        ...

    def facts(self, document: dict[str, Any]) -> CallFacts:
        """What a stored record means for the member who called."""
        ...

    def reported(self, details: dict[str, Any]) -> Reported:
        """What a post's details (as `facts` made them) say of the call: status, seconds, target
        (the campaign results' recount reads posts with it)."""
        ...
