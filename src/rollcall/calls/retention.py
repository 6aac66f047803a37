"""Keeping call bodies no longer than needed (`ROLLCALL_CALL_BODY_RETENTION_DAYS`, off by default).

Past the retention period, the body as received, the record and the repairs of a call that is
done with (`imported`, `discarded`) or was `rejected` are removed, a small batch at a time; the
row stays, with its de-duplication key (a replayed call is still recognised), its campaign, time,
state and what it became, and `body_removed_at` says when. Rejected calls can be repaired until
then. The importer does this when it has nothing to import, outside the intake's commits: the
candidates are found in a read, and only their ids are written, in a short transaction.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from rollcall.calls.models import Call, CallState
from rollcall.db import Database
from rollcall.times import utcnow

BATCH = 500  # calls scrubbed per transaction
SCAN = 5000  # call ids looked at per step: each step costs the same however big the table is
SWEEP_EVERY = 300.0  # seconds between passes over the table once one found nothing more to do
SCRUBBED = (CallState.IMPORTED, CallState.DISCARDED, CallState.REJECTED)


class BodySweeper:
    """Walks the calls by id, a window of `SCAN` ids per step, scrubbing the old ones in it (at most
    `BATCH` a step). A pass ends at the first call younger than the retention (ids grow with time)
    or at the end of the table; the next pass starts from the first call again `SWEEP_EVERY`
    later, so calls that became done with since (a late import, a repair) are found too."""

    def __init__(self, database: Database, retention_days: float | None) -> None:
        self.database = database
        self.retention = dt.timedelta(days=retention_days) if retention_days else None
        self._after = 0  # calls up to this id have been looked at in this pass
        self._next = 0.0  # monotonic time of the next step

    def due(self, now: float) -> bool:
        return self.retention is not None and now >= self._next

    def sweep(self, now: float) -> int:
        """One step; how many calls it scrubbed."""
        assert self.retention is not None
        cutoff = utcnow() - self.retention
        with self.database.reading() as session:
            rows = session.execute(
                sa.select(Call.id, Call.received_at, Call.state, Call.body_removed_at)
                .where(Call.id > self._after, Call.id <= self._after + SCAN)
                .order_by(Call.id)
            ).all()
        old: list[int] = []
        last = self._after
        ended = not rows
        for call_id, received_at, state, removed_at in rows:
            if received_at >= cutoff:
                ended = True  # younger from here on
                break
            if len(old) == BATCH:
                break
            last = call_id
            if state in SCRUBBED and removed_at is None:
                old.append(call_id)
        if old:
            with self.database.writing() as session:
                session.execute(
                    sa.update(Call)
                    .where(Call.id.in_(old), Call.body_removed_at.is_(None), Call.state.in_(SCRUBBED))
                    .values(raw="", record=None, repairs=None, body_removed_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        if ended:
            self._after, self._next = 0, now + SWEEP_EVERY
        else:
            self._after = last
        return len(old)
