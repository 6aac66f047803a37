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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from rollcall.calls.deliveries import Delivery


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What a stored record means for the member who called: who, which campaign, when, how it
    went (a completed call is an accepted post), and the post's details."""

    mobile: str
    campaign_id: int
    call_timestamp: dt.datetime | None
    anonymous: bool  # nobody to credit: the call is discarded
    completed: bool
    details: dict[str, Any]


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
