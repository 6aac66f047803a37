"""Group commit: the deliveries of concurrent requests are stored together, in one transaction.

Every request hands its delivery to one writer thread and waits. The writer takes everything
that queued up while the previous commit was syncing to disk, stores it in one transaction,
and then answers all of those requests. One fsync thus covers many requests, and no request is
answered before its call is on disk.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

from rollcall.callpower.service import Delivery, store_deliveries
from rollcall.db import Database

log = structlog.get_logger("rollcall.writer")

MAX_BATCH = 256
_STOP = object()


class WriterStopped(Exception):
    """The writer is shut down; nothing more can be stored by this process."""


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class CallWriter:
    def __init__(self, database: Database, on_stored: Callable[[int], None] | None = None) -> None:
        self.database = database
        self.on_stored = on_stored
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._running = False

    async def store(self, delivery: Delivery) -> None:
        """Return once the delivery is committed to disk; raise what the database raised if not."""
        if not self._running:
            raise WriterStopped()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((delivery, loop, future))
        await future

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="rollcall-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Store what is queued, then end the thread."""
        self._running = False
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in batch:
                stopping = True
                batch = [item for item in batch if item is not _STOP]
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[Any]) -> None:
        error: BaseException | None = None
        new = 0
        try:
            with self.database.writing() as session:
                new = store_deliveries(session, [delivery for delivery, _, _ in batch])
        except Exception as failure:
            log.error("writer.commit_failed", requests=len(batch), error=repr(failure))
            error = failure
        for _, loop, future in batch:
            try:
                loop.call_soon_threadsafe(_settle, future, error)
            except RuntimeError:  # that request's event loop is closed
                pass
        if new and self.on_stored is not None:
            self.on_stored(new)
