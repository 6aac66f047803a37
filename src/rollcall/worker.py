"""The import loop: claim waiting calls, import them, record the outcomes. Nothing else.

`rollcall worker` runs `Importer.run()`. Inside `rollcall serve` the writer thread calls
`import_batch()` in the gaps between storing deliveries (see `callpower/writer.py`).
"""

from __future__ import annotations

import threading
import time

import structlog

from rollcall import metrics
from rollcall.callpower import service as calls
from rollcall.callpower.importer import import_call, import_calls
from rollcall.callpower.models import ImportOutcome
from rollcall.config import Settings
from rollcall.db import Database, savepoint
from rollcall.dialect import CallsSignal

log = structlog.get_logger("rollcall.importer")

# After a database error, wait this long before trying again.
ERROR_PAUSE = 1.0


class Importer:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def import_batch(self, limit: int | None = None) -> int:
        """Claim the calls due now (up to `limit`, else the configured batch size) and import them.

        One transaction. The batch is imported set-wise; if anything in it fails, it is imported
        again call by call, each in its own savepoint, so one bad call is marked `failed` and the
        others go through. Returns how many calls were handled.
        """
        settings = self.settings
        started = time.perf_counter()
        with self.database.writing() as session:
            connection = session.connection()
            claimed = calls.claim_waiting_calls(session, limit or settings.import_batch_size)
            if not claimed:
                return 0
            try:
                with savepoint(connection, "import_batch"):
                    outcomes = import_calls(session, claimed)
                    calls.record_outcomes(session, claimed, outcomes)
            except Exception:
                outcomes: list[ImportOutcome | None] = []
                for call in claimed:
                    try:
                        with savepoint(connection, "import_call"):
                            outcome = import_call(session, call)
                            calls.record_outcomes(session, [call], [outcome])
                        outcomes.append(outcome)
                    except Exception as error:
                        calls.record_failure(
                            session,
                            call,
                            error,
                            max_attempts=settings.import_max_attempts,
                            base_delay=settings.import_retry_base_seconds,
                        )
                        outcomes.append(None)
                        log.warning(
                            "call.import_failed", call_id=call.id, attempts=call.attempts + 1, error=repr(error)
                        )
        seconds = time.perf_counter() - started
        metrics.IMPORT_SECONDS.observe(seconds)
        for call, outcome in zip(claimed, outcomes, strict=True):
            state = str(outcome.state) if outcome is not None else "failed"
            metrics.IMPORTED_CALLS.labels(state).inc()
            metrics.IMPORT_CALL_SECONDS.observe(seconds / len(claimed))
            if outcome is not None:
                log.info("call.import", call_id=call.id, state=state, post_id=outcome.post_id)
        return len(claimed)

    def run(self, stopping: threading.Event) -> None:
        """Import until `stopping` is set (from a signal handler, say); the batch in hand is finished.

        With nothing to do it waits for calls to be announced (PostgreSQL NOTIFY from any
        process) or for the poll interval, which also brings failed calls whose retry is due.
        """
        signal = CallsSignal(self.database)
        try:
            while not stopping.is_set():
                try:
                    handled = self.import_batch()
                except Exception as error:  # the database went away: keep the process, try again
                    log.error("importer.batch_failed", error=repr(error))
                    stopping.wait(ERROR_PAUSE)
                    continue
                if handled == 0:
                    signal.wait(self.settings.import_poll_seconds)
        finally:
            signal.close()
