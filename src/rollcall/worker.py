"""The import loop: claim waiting calls, import each one, record the outcome. Nothing else.

`rollcall worker` runs `Importer.run()`. Inside `rollcall serve` the writer thread drives
`import_batch()` in the gaps between storing deliveries (see `callpower/writer.py`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from rollcall.callpower import service as calls
from rollcall.callpower.importer import import_call
from rollcall.config import Settings
from rollcall.db import CallsSignal, Database, savepoint

log = structlog.get_logger("rollcall.importer")

# One batch is one transaction. On SQLite it holds the only write lock: the batch ends early
# when someone waits to write (`yield_to`), and after this long in any case, so a writer in
# another process waits at most about this long.
BATCH_TIME_BUDGET = 0.2
# The first claim of a loop is small; it doubles while batches finish whole (up to the
# configured batch size) and shrinks to what was done when a batch ends early.
FIRST_CLAIM = 16
# After a database error, wait this long before trying again.
ERROR_PAUSE = 1.0


class Importer:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self._claim = FIRST_CLAIM
        self._stopping = threading.Event()

    def import_batch(self, yield_to: Callable[[], bool] | None = None) -> int:
        """Import the calls due now, up to a batch; returns how many were handled.

        The batch ends early, committing what is done, as soon as `yield_to()` is true.
        """
        yield_to = yield_to or self.database.writer_waiting
        settings = self.settings
        deadline = time.monotonic() + BATCH_TIME_BUDGET
        handled = 0
        with self.database.writing() as session:
            connection = session.connection()
            claimed = calls.claim_waiting_calls(session, self._claim)
            for call in claimed:
                started = time.perf_counter()
                try:
                    with savepoint(connection, "import_call"):
                        outcome = import_call(session, call)
                        calls.record_outcome(session, call, outcome)
                except Exception as error:
                    calls.record_failure(
                        session,
                        call,
                        error,
                        max_attempts=settings.import_max_attempts,
                        base_delay=settings.import_retry_base_seconds,
                    )
                    log.warning("call.import_failed", call_id=call.id, attempts=call.attempts + 1, error=repr(error))
                else:
                    log.info(
                        "call.import",
                        call_id=call.id,
                        state=str(outcome.state),
                        post_id=outcome.post_id,
                        seconds=round(time.perf_counter() - started, 6),
                    )
                handled += 1
                if yield_to() or time.monotonic() > deadline or self._stopping.is_set():
                    break
        if handled < len(claimed):
            self._claim = max(FIRST_CLAIM, handled)
        elif handled == self._claim:
            self._claim = min(settings.import_batch_size, self._claim * 2)
        return handled

    def run(self) -> None:
        """Import until `request_stop()`.

        With nothing to do it waits for calls to be announced (PostgreSQL NOTIFY from any
        process) or for the poll interval, which also brings failed calls whose retry is due.
        """
        signal = CallsSignal(self.database)
        try:
            while not self._stopping.is_set():
                try:
                    handled = self.import_batch()
                except Exception as error:  # the database went away: keep the process, try again
                    log.error("importer.batch_failed", error=repr(error))
                    self._stopping.wait(ERROR_PAUSE)
                    continue
                if handled == 0:
                    signal.wait(self.settings.import_poll_seconds)
        finally:
            signal.close()

    def request_stop(self) -> None:
        """Ask the loop to end after the call in hand; safe from a signal handler."""
        self._stopping.set()
