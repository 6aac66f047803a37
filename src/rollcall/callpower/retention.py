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

from rollcall.callpower.models import Call, CallState
from rollcall.db import Database
from rollcall.times import utcnow

BATCH = 500  # calls scrubbed per transaction
SWEEP_EVERY = 60.0  # seconds between sweeps once nothing is left to scrub
SCRUBBED = (CallState.IMPORTED, CallState.DISCARDED, CallState.REJECTED)


class BodySweeper:
    """Scrubs old bodies a batch at a time, remembering how far it got (by call id) while it runs."""

    def __init__(self, database: Database, retention_days: float | None) -> None:
        self.database = database
        self.retention = dt.timedelta(days=retention_days) if retention_days else None
        self._after = 0  # calls up to this id have been looked at
        self._next = 0.0  # monotonic time of the next sweep

    def due(self, now: float) -> bool:
        return self.retention is not None and now >= self._next

    def sweep(self, now: float) -> int:
        """One batch; how many calls it scrubbed. Once there is nothing left, the next sweep
        comes `SWEEP_EVERY` later and starts from the first call again (ids only grow)."""
        assert self.retention is not None
        cutoff = utcnow() - self.retention
        with self.database.reading() as session:
            rows = session.execute(
                sa.select(Call.id, Call.received_at)
                .where(Call.id > self._after, Call.body_removed_at.is_(None), Call.state.in_(SCRUBBED))
                .order_by(Call.id)
                .limit(BATCH)
            ).all()
        old = [call_id for call_id, received_at in rows if received_at < cutoff]
        if old:
            with self.database.writing() as session:
                session.execute(
                    sa.update(Call)
                    .where(Call.id.in_(old), Call.body_removed_at.is_(None), Call.state.in_(SCRUBBED))
                    .values(raw="", record=None, repairs=None, body_removed_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        if len(rows) < BATCH or len(old) < len(rows):  # the end, or calls too young from here on
            self._after, self._next = 0, now + SWEEP_EVERY
        else:
            self._after = rows[-1][0]
        return len(old)
