"""The group-commit writer: group commit first, imports in the gaps (and the writer in a thread,
for an app made by `create_app` alone).

Every request hands its delivery to the writer and waits. The writer takes everything that
queued up while its previous commit was syncing to disk, stores it in one transaction, and then
answers all of those requests: one fsync covers many requests, and no request is answered
before its call is on disk.

`GroupCommit` is that loop; it takes deliveries from an inbox. Under `rollcall serve` the inbox
is the writer process's socket (`writer_process.SocketInbox`), and the loop is that process's
only thread. Run on its own (`create_app` without `serve`, the tests), `CallWriter` runs the
loop in a thread of the API process with a queue for an inbox.

When no delivery has come for a moment, the same thread imports stored calls, a batch at a
time (each sized to take about ROLLCALL_IMPORT_BATCH_SECONDS: `queue.FIRST_BATCH`), looking at
the queue between batches. While deliveries never pause (a burst, or CallPower
replaying a campaign's history one request after another), the importer still gets a small
batch at regular intervals, so it keeps moving without holding up the intake for long.
Acknowledging calls comes first: under a burst the backlog grows and is worked off when the
burst ends, and on SQLite, where there is one writer at a time, the intake never queues behind
a long import.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from rollcall import metrics
from rollcall.calls.deliveries import store_deliveries
from rollcall.calls.queue import ERROR_PAUSE, Importer
from rollcall.calls.source import Delivery, Refusal, Source
from rollcall.db import Database

log = structlog.get_logger("rollcall.writer")

MAX_BATCH = 256
# While deliveries have come within BUSY_WINDOW, the importer gets batches of IMPORT_SLICE
# calls and a share of the writer's time: after a batch that took t seconds, the next comes
# t * (1 - share) / share later. Once deliveries have stopped for BUSY_WINDOW, whole batches back
# to back. (Clients wait for their answers, so a queue that is empty for a moment is not a quiet
# one.) The share depends on how full the commits are lately, which says how many clients are
# waiting: IMPORT_SHARE_ALONE divided by the deliveries per commit, never below
# IMPORT_SHARE_FLOOD. One client sending call after call (CallPower's own pattern, one delivery
# per commit) meets a writer that is mostly idle, so the importer may take a quarter of it and
# keeps up with the calls as they come. A flood gets its answers first: each import batch stops
# the commits while it runs, so every client waits; the importer keeps moving at 3% and the
# backlog is worked off when the flood ends (docs/benchmarks.md, "An import batch stops every
# client").
BUSY_WINDOW = 0.25
IMPORT_SHARE_ALONE = 0.25
IMPORT_SHARE_FLOOD = 0.03
IMPORT_SLICE = 16
STOP = object()  # an inbox's word that the writer is to stop (after storing what it took)
WAKE = object()  # an inbox's word that calls were released: import now


# What storing a body came to: why it was refused (None: a valid call) and the errors.
Receipt = tuple[Refusal | None, dict[str, list[str]] | None]


class Writer(Protocol):
    """What the app needs of a writer: `CallWriter` here, or `RemoteWriter` (the writer process)."""

    async def receive(self, body: bytes, content_type: str | None) -> Receipt:
        """Decode, validate and store a delivery's body. Returns once the delivery is on disk;
        raises if it could not be stored."""
        ...

    def wake_importer(self) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class WriterStopped(Exception):
    """The writer is shut down; nothing more can be stored by this process."""


# A delivery handed to the writer, with whatever its inbox needs to answer its sender.
Handed = tuple[Delivery, Any]


class Inbox(Protocol):
    """Where `GroupCommit` takes deliveries from and sends its answers to."""

    def take(self, timeout: float | None) -> list[Any]:
        """What came in: `Handed` deliveries, `WAKE`, `STOP`. Waits up to `timeout` for the
        first (None: for ever; 0: not at all) and returns [] if nothing came."""
        ...

    def answer(self, handed: list[Handed], error: BaseException | None) -> None:
        """Tell the senders: their deliveries are on disk (`error` None), or were not stored."""
        ...


class GroupCommit:
    """The writer's loop: commit what came in, import in the gaps, until the inbox says stop."""

    def __init__(self, database: Database, source: Source, importer: Importer | None = None) -> None:
        self.database = database
        self.source = source
        self.importer = importer

    def run(self, inbox: Inbox) -> None:
        # With an importer, look for calls at once (some may have waited for a restart).
        wait: float | None = 0 if self.importer else None
        next_import = last_delivery = time.monotonic()
        crowd = 1.0
        while True:
            items = inbox.take(wait)
            batch = [item for item in items if item is not STOP and item is not WAKE]
            if batch:
                self._commit(inbox, batch)
                last_delivery = time.monotonic()
                crowd = crowd * 0.8 + len(batch) * 0.2  # how many deliveries a commit holds, lately
            if STOP in items:
                return
            if self.importer is None:
                wait = None
                continue
            now = time.monotonic()
            busy = now - last_delivery < BUSY_WINDOW
            if busy and now < next_import:
                wait = next_import - now  # deliveries first, until the importer's turn
                continue
            wait = self._import_some(self.importer, IMPORT_SLICE if busy else None)
            done = time.monotonic()
            share = max(IMPORT_SHARE_FLOOD, IMPORT_SHARE_ALONE / crowd)
            next_import = done + (done - now) * (1 - share) / share

    def _import_some(self, importer: Importer, limit: int | None) -> float:
        """One import batch; returns how long to wait for deliveries before the next one."""
        try:
            handled = importer.step(limit)  # (the body retention, a small batch, only when idle)
        except Exception as error:  # the database went away: the intake answers 503 meanwhile
            log.error("importer.batch_failed", error=repr(error))
            return ERROR_PAUSE
        return 0 if handled else importer.settings.import_poll_seconds

    def _commit(self, inbox: Inbox, batch: list[Handed]) -> None:
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            with self.database.writing() as session:
                stored = store_deliveries(session, [delivery for delivery, _ in batch], self.source)
            # Answered as stored: a campaign's defaults may have completed a delivery.
            batch = [(delivery, reply) for delivery, (_, reply) in zip(stored.deliveries, batch, strict=True)]
        except Exception as failure:
            log.error("writer.commit_failed", requests=len(batch), error=repr(failure))
            error = failure
        metrics.WRITER_COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.WRITER_BATCH_CALLS.observe(len(batch))
        inbox.answer(batch, error)


Done = Callable[[Delivery, BaseException | None], None]


def _finish(dones: list[tuple[Delivery, Done]], error: BaseException | None) -> None:
    for delivery, done in dones:
        done(delivery, error)


def _settle(future: asyncio.Future[Delivery], delivery: Delivery, error: BaseException | None) -> None:
    if future.done():  # the request went away meanwhile
        return
    if error is None:
        future.set_result(delivery)
    else:
        future.set_exception(error)


class _QueueInbox:
    """`CallWriter`'s inbox: requests on event loops hand deliveries over a queue to the thread."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def take(self, timeout: float | None) -> list[Any]:
        try:
            items = [self.queue.get(timeout=timeout) if timeout != 0 else self.queue.get_nowait()]
        except queue.Empty:
            return []
        while len(items) < MAX_BATCH:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def answer(self, handed: list[Handed], error: BaseException | None) -> None:
        # One wake-up per event loop for the whole batch, not one per request.
        waiting: dict[asyncio.AbstractEventLoop, list[tuple[Delivery, Done]]] = {}
        for delivery, (loop, done) in handed:
            waiting.setdefault(loop, []).append((delivery, done))
        for loop, dones in waiting.items():
            with contextlib.suppress(RuntimeError):  # that event loop is closed
                loop.call_soon_threadsafe(_finish, dones, error)


class CallWriter:
    """The writer in a thread of this process (the app on its own, the tests)."""

    def __init__(self, database: Database, source: Source, importer: Importer | None = None) -> None:
        self.source = source
        self._loop = GroupCommit(database, source, importer)
        self._inbox = _QueueInbox()
        self._thread: threading.Thread | None = None
        self._running = False

    async def receive(self, body: bytes, content_type: str | None) -> Receipt:
        stored = await self.store(self.source.delivery(body, content_type))
        return stored.refusal, stored.errors

    async def store(self, delivery: Delivery) -> Delivery:
        """The delivery as stored, once it is committed to disk; raise what the database raised if not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Delivery] = loop.create_future()
        if not self._running:
            raise WriterStopped()
        self._inbox.queue.put((delivery, (loop, functools.partial(_settle, future))))
        return await future

    def wake_importer(self) -> None:
        """Calls were released (mapping, retry): import now rather than at the next poll."""
        self._inbox.queue.put(WAKE)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._loop.run, args=(self._inbox,), name="rollcall-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Store what is queued, finish the call being imported, then end the thread."""
        self._running = False
        if self._thread is not None:
            self._inbox.queue.put(STOP)
            self._thread.join()
            self._thread = None
