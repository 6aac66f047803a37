"""The import queue: stored calls waiting for an importer, claimed, and what became of them;
and the import loop that works it (`Importer`).

`rollcall worker` runs `Importer.run()`. Inside `rollcall serve` the writer's loop calls
`import_batch()` in the gaps between storing deliveries (`writer.GroupCommit`). What one call
becomes is `importer.import_calls`; this module only claims, calls it, and records the outcome.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
import time
from collections.abc import Sequence

import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session

from rollcall import metrics
from rollcall.calls import statistics
from rollcall.calls.importer import Imported, import_calls
from rollcall.calls.models import (
    NEW,
    PARKED,
    RETRYING,
    WAITING_STATES,
    Call,
    CallDocument,
    CallState,
    ClaimedCall,
    ImportOutcome,
)
from rollcall.calls.retention import BodySweeper
from rollcall.calls.signals import Signal
from rollcall.calls.source import Source
from rollcall.config import MAX_RETRY_DELAY_HOURS, Settings
from rollcall.db import Database, savepoint, table_of
from rollcall.dialect import driver_times, named_rows, update_rows
from rollcall.events import EventType, NewEvent, record_events
from rollcall.logs import log_each
from rollcall.times import utcnow

log = structlog.get_logger("rollcall.importer")

_calls = table_of(Call)
MAX_RETRY_DELAY = dt.timedelta(hours=MAX_RETRY_DELAY_HOURS)
ERROR_PAUSE = 1.0  # after a database error, wait this long before trying again
# A whole import batch is sized from the pace of the last one: as many calls as fit in
# ROLLCALL_IMPORT_BATCH_SECONDS, at most twice the last (a pace measured on a few calls says
# little about many) and ROLLCALL_IMPORT_BATCH_SIZE. Bigger batches cost less per call (a
# commit, and the results' sums, are paid once a batch: docs/benchmarks.md), but a batch holds
# the writer while it runs: on SQLite every other writer, the intake's commits included.
FIRST_BATCH = 200  # calls in an importer's first whole batch, before it has a pace
SMALLEST_BATCH = 16

_CLAIMED_COLUMNS = (
    _calls.c.id,
    _calls.c.record,
    _calls.c.attempts,
    _calls.c.state,
    _calls.c.callpower_campaign_id,
    _calls.c.received_at,
)
# New calls in the order they came (every one is due: stored, repaired or sent back "now"), and
# failed calls by their retry time, each through the partial index over those few (its condition
# repeated word for word, for SQLite to use it).
_CLAIM = {
    CallState.RECEIVED: sa.select(*_CLAIMED_COLUMNS)
    .where(_calls.c.state == CallState.RECEIVED.value, sa.text(NEW))
    .order_by(_calls.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True),
    CallState.FAILED: sa.select(*_CLAIMED_COLUMNS)
    .where(_calls.c.state == CallState.FAILED.value, sa.text(RETRYING), _calls.c.next_attempt_at <= sa.bindparam("now"))
    .order_by(_calls.c.next_attempt_at, _calls.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True),
}


def claim_waiting_calls(session: Session, limit: int) -> list[ClaimedCall]:
    """Calls due for import, locked for this transaction (other importers skip them).

    New calls first, then failed calls whose retry time has come. On PostgreSQL the rows stay
    locked until the transaction ends, so an importer that dies releases them with its connection.
    """
    now = utcnow()
    claimed: list[ClaimedCall] = []
    connection = session.connection()
    for state in WAITING_STATES:
        if len(claimed) >= limit:
            break
        rows = connection.execute(_CLAIM[state], {"now": now, "limit": limit - len(claimed)})
        claimed.extend(ClaimedCall(*row) for row in rows)
    return claimed


def _outcome(call: ClaimedCall, outcome: ImportOutcome, now: object) -> dict[str, object]:
    """A call's row after its import, by column (its `id` last: the key `update_rows` matches)."""
    return {
        "state": str(outcome.state),
        "user_id": outcome.user_id,
        "signup_id": outcome.signup_id,
        "post_id": outcome.post_id,
        "imported_at": now if outcome.state == CallState.IMPORTED else None,
        "attempts": call.attempts + 1,
        "next_attempt_at": None,
        "last_error": None,
        "updated_at": now,
        "id": call.id,
    }


_OUTCOME_COLUMNS = tuple(_outcome(ClaimedCall(0, {}, 0, "", None, utcnow()), ImportOutcome(CallState.IMPORTED), None))


def record_outcomes(session: Session, calls: Sequence[ClaimedCall], outcomes: Sequence[ImportOutcome]) -> None:
    """Store what each call became (one statement for the batch)."""
    now = driver_times(session)(utcnow())
    rows = named_rows(_OUTCOME_COLUMNS, [_outcome(c, o, now) for c, o in zip(calls, outcomes, strict=True)])
    update_rows(session, _calls, _OUTCOME_COLUMNS[:-1], rows)
    statistics.moved(
        session,
        [
            (call.callpower_campaign_id, call.received_at, call.state, outcome.state)
            for call, outcome in zip(calls, outcomes, strict=True)
        ],
    )


_UPDATE_CALL = sa.update(_calls).where(_calls.c.id == sa.bindparam("call"))


def record_failure(
    session: Session, call: ClaimedCall, error: BaseException, *, max_attempts: int, base_delay: float
) -> None:
    """Count a failed attempt: retry later with exponential backoff, or give up (`dead`)."""
    now = utcnow()
    attempts = call.attempts + 1
    if attempts >= max_attempts:
        state, next_attempt_at = CallState.DEAD, None
    else:
        delay = min(dt.timedelta(seconds=base_delay * 2 ** (attempts - 1)), MAX_RETRY_DELAY)
        state, next_attempt_at = CallState.FAILED, now + delay
    session.connection().execute(
        _UPDATE_CALL,
        {
            "call": call.id,
            "state": state,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "last_error": f"{type(error).__name__}: {error}"[:2000],
            "updated_at": now,
        },
    )
    statistics.moved(session, [(call.callpower_campaign_id, call.received_at, call.state, state)])
    if state == CallState.DEAD:
        record_events(session, [(EventType.CALL_DEAD, call.id, CallDocument.of(session.get(Call, call.id)))])


def first_unmapped(session: Session, calls: Sequence[ClaimedCall], outcomes: Sequence[ImportOutcome]) -> list[NewEvent]:
    """`call.unmapped` for each CallPower campaign with no action whose first waiting call is
    among these (no call of it waited before): operators hear of a campaign to map once."""
    parked: dict[int, list[int]] = {}
    for call, outcome in zip(calls, outcomes, strict=True):
        if outcome.state == CallState.UNMAPPED:
            parked.setdefault(int(call.record["callpower_campaign_id"]), []).append(call.id)
    events: list[NewEvent] = []
    for campaign_id, ids in sorted(parked.items()):
        waited = session.scalar(
            sa.select(sa.literal(1))
            .where(
                Call.state == CallState.UNMAPPED,
                Call.callpower_campaign_id == campaign_id,
                Call.id.not_in(ids),
                sa.text(PARKED),
            )
            .limit(1)
        )
        if waited is None:
            first = min(ids)
            events.append((EventType.CALL_UNMAPPED, first, CallDocument.of(session.get(Call, first))))
    return events


def record_import(session: Session, calls: Sequence[ClaimedCall], imported: Imported) -> None:
    """What an import made: each call's outcome, and the events that tell of it."""
    record_outcomes(session, calls, imported.outcomes)
    record_events(session, [*imported.events, *first_unmapped(session, calls, imported.outcomes)])


class Importer:
    """Claims waiting calls, imports them, records the outcomes."""

    def __init__(self, database: Database, settings: Settings, source: Source) -> None:
        self.database = database
        self.settings = settings
        self.source = source
        self.sweeper = BodySweeper(database, settings.call_body_retention_days)
        self.batch_size = min(FIRST_BATCH, settings.import_batch_size)  # calls the next whole batch claims

    def step(self, limit: int | None = None) -> int:
        """An import batch; with nothing to import, one step of the body retention. How many
        calls it handled or scrubbed: 0 means there is nothing to do now."""
        return self.import_batch(limit) or self.tidy()

    def tidy(self) -> int:
        """With nothing to import: one batch of the body retention, if it is on and due; how
        many calls it scrubbed (more may follow at once)."""
        now = time.monotonic()
        if not self.sweeper.due(now):
            return 0
        scrubbed = self.sweeper.sweep(now)
        if scrubbed:
            log.info("calls.bodies_removed", calls=scrubbed)
        return scrubbed

    def import_batch(self, limit: int | None = None) -> int:
        """Claim the calls due now (up to `limit`, else a whole batch: `batch_size`) and import them.

        One transaction. The batch is imported set-wise; if anything in it fails, its halves are
        imported again, each in its own savepoint, and so on down to the bad call (`_in_halves`),
        which is marked `failed` while the others go through. Returns how many calls were handled.
        """
        started = time.perf_counter()
        outcomes: list[ImportOutcome | None]
        size = limit or self.batch_size
        with self.database.writing() as session:
            claimed = claim_waiting_calls(session, size)
            if not claimed:
                return 0
            try:
                outcomes = self._imported(session, claimed)
            except Exception:
                outcomes = self._halves(session, claimed)
        seconds = time.perf_counter() - started
        if limit is None and len(claimed) == size:  # (a batch the queue cut short has no pace to go by)
            self.batch_size = self._next_size(size, seconds)
        metrics.IMPORT_SECONDS.observe(seconds)
        lines = []
        by_state: collections.Counter[str] = collections.Counter()
        for call, done in zip(claimed, outcomes, strict=True):
            state = str(done.state) if done is not None else "failed"
            by_state[state] += 1
            metrics.IMPORT_CALL_SECONDS.observe(seconds / len(claimed))
            if done is not None:
                lines.append({"call_id": call.id, "state": state, "post_id": done.post_id})
        for state, count in by_state.items():
            metrics.IMPORTED_CALLS.labels(state).inc(count)
        log_each("call.import", lines)
        return len(claimed)

    def _next_size(self, calls: int, seconds: float) -> int:
        """The next whole batch, after one of `calls` took `seconds` (see FIRST_BATCH)."""
        most = self.settings.import_batch_size
        fits = int(calls * self.settings.import_batch_seconds / max(seconds, 1e-9))
        return max(min(SMALLEST_BATCH, most), min(most, 2 * calls, fits))

    def _in_halves(self, session: Session, calls: Sequence[ClaimedCall]) -> list[ImportOutcome | None]:
        """Calls of a batch that failed, imported again in a savepoint; if that fails too, each
        half likewise, and parts of SMALLEST_BATCH calls or fewer call by call: a call that fails
        alone is counted as failed. One bad call in a batch of 5,000 costs about thirty imports
        (a call-by-call retry cost 5,000); when every call fails, about as many as calls."""
        if len(calls) > SMALLEST_BATCH:
            try:
                return self._imported(session, calls)
            except Exception:
                return self._halves(session, calls)
        return [self._one(session, call) for call in calls]

    def _halves(self, session: Session, calls: Sequence[ClaimedCall]) -> list[ImportOutcome | None]:
        """Calls whose set-wise import failed: each half again (`_in_halves`), in order."""
        half = len(calls) // 2
        return self._in_halves(session, calls[:half]) + self._in_halves(session, calls[half:])

    def _imported(self, session: Session, calls: Sequence[ClaimedCall]) -> list[ImportOutcome | None]:
        """The calls imported set-wise in a savepoint (undone if anything fails: then it raises)."""
        with savepoint(session, "import_part"):
            imported = import_calls(session, calls, self.source)
            record_import(session, calls, imported)
        return list(imported.outcomes)

    def _one(self, session: Session, call: ClaimedCall) -> ImportOutcome | None:
        """A call imported alone (None: it failed, and is counted so)."""
        try:
            [outcome] = self._imported(session, [call])
            return outcome
        except Exception as error:
            record_failure(
                session,
                call,
                error,
                max_attempts=self.settings.import_max_attempts,
                base_delay=self.settings.import_retry_base_seconds,
            )
            log.warning("call.import_failed", call_id=call.id, attempts=call.attempts + 1, error=repr(error))
            return None

    def run(self, stopping: threading.Event) -> None:
        """Import until `stopping` is set (from a signal handler, say); the batch in hand is finished.

        With nothing to do it waits for calls to be announced (PostgreSQL NOTIFY from any
        process) or for the poll interval, which also brings failed calls whose retry is due.
        """
        signal = Signal(self.database)
        try:
            while not stopping.is_set():
                try:
                    handled = self.step()
                except Exception as error:  # the database went away: keep the process, try again
                    log.error("importer.batch_failed", error=repr(error))
                    stopping.wait(ERROR_PAUSE)
                    continue
                if handled == 0:
                    signal.wait(self.settings.import_poll_seconds)
        finally:
            signal.close()
