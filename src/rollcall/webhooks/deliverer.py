"""The deliverer: an asyncio loop of its own (a process started by `rollcall serve` and `rollcall
worker`) that sends each delivery as Standard Webhooks says, over keep-alive connections of
httpcore (httpx's engine, driven directly: `Lanes`).

A request is `POST {"type", "timestamp", "data"}` with `webhook-id` (the event id, the same on
every retry, so a receiver can de-duplicate), `webhook-timestamp` and `webhook-signature`
(`v1,<base64 HMAC-SHA256>`, signed with the `standardwebhooks` reference library; during a
secret's rotation, one signature for each secret). Any 2xx is delivered; anything else, a
timeout or a refused connection is an attempt to retry (`queue.record`). Each endpoint has at
most `IN_FLIGHT` requests out at once, so a slow or dead one never holds up the others, and the
intake and importers never wait for any of it: the database work here is short transactions run
on a thread beside the loop.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import functools
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import structlog

try:  # uvicorn[standard] brings it (not on Windows): a quicker event loop for many small requests
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]
from standardwebhooks import Webhook as Signer

from rollcall import metrics
from rollcall.config import LEASE_MARGIN_SECONDS, Settings
from rollcall.db import Database
from rollcall.processes import name_this_process, stop_when_orphaned
from rollcall.times import utcnow
from rollcall.webhooks import queue
from rollcall.webhooks.addresses import refusal

log = structlog.get_logger("rollcall.webhooks")

IN_FLIGHT = 32  # requests out at once to one endpoint
ANSWER_LIMIT = 64 * 1024  # bytes of a receiver's answer read at most (its status is what counts)
AHEAD = 224  # deliveries taken for an endpoint beyond those, ready to go out as others finish
STEP_GAP = 0.05  # seconds from one busy step's start to the next: at most 20 write transactions a second
RETENTION_EVERY = 300.0  # seconds between sweeps of events past their retention
ERROR_PAUSE = 1.0  # after a failed step (the database went away), wait this long
USER_AGENT = b"rollcall-webhooks"
NICENESS = 10  # the deliverer's scheduling priority below the intake's
TRANSPORT_ERRORS = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, httpcore.ProxyError)


class AddressRefused(httpcore.ConnectError):
    """The host resolved to an address rollcall must not send to (loopback, private, ...)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving each host itself and connecting only to addresses on
    the public internet: a name that resolves elsewhere now (DNS rebinding) is refused at the
    moment of the connection, not only when the URL was given. TLS still checks the certificate
    against the name (httpcore sends it as the server name)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=0, proto=6)
        addresses = sorted({str(info[4][0]) for info in found})
        for address in addresses:
            reason = refusal(address)
            if reason:
                raise AddressRefused(f"{host} resolves to {address}, which is {reason}")
        if not addresses:
            raise AddressRefused(f"{host} does not resolve")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks are not sent to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Lanes:
    """The connections deliveries go out on: for each endpoint, up to `IN_FLIGHT` pools of one
    keep-alive connection each, every one carrying one request at a time.

    httpx's own engine (httpcore) is used directly. Measured here (docs/benchmarks.md): the
    httpx layer above it doubled the CPU each request costs, and one pool of 32 connections
    spends more time choosing a connection than sending (httpcore 1.0's pool scans every
    connection for every queued request). No proxy from the environment, no redirects followed
    (a receiver answers; it does not send us elsewhere), one deadline for each attempt (`send`)."""

    def __init__(self, settings: Settings) -> None:
        self._ssl = httpx.create_ssl_context()  # one trust store for all (loading one costs 25 ms)
        self._backend = None if settings.webhooks_allow_private else GuardedBackend()
        seconds = settings.webhook_timeout_seconds
        self.deadline = seconds  # for the whole attempt: connect, send, answer
        self.timeouts = {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}
        self._free: dict[int, list[httpcore.AsyncConnectionPool]] = {}
        self._all: list[httpcore.AsyncConnectionPool] = []

    def take(self, webhook_id: int) -> httpcore.AsyncConnectionPool:
        free = self._free.setdefault(webhook_id, [])
        if free:
            return free.pop()
        lane = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl, max_connections=1, keepalive_expiry=5.0, network_backend=self._backend
        )
        self._all.append(lane)
        return lane

    def give_back(self, webhook_id: int, lane: httpcore.AsyncConnectionPool) -> None:
        self._free.setdefault(webhook_id, []).append(lane)

    async def aclose(self) -> None:
        for lane in self._all:
            await lane.aclose()


@functools.lru_cache(maxsize=256)
def _signer(secret: str) -> Signer:
    return Signer(secret)  # decodes the secret once, not at every request


def headers(taken: queue.Taken, at: dt.datetime) -> list[tuple[bytes, bytes]]:
    """The Standard Webhooks headers of one attempt (its own timestamp, the event's id)."""
    body = taken.body.decode()
    signatures = " ".join(_signer(secret).sign(taken.event_id, at, body) for secret in taken.secrets)
    return [
        (b"content-type", b"application/json"),
        (b"user-agent", USER_AGENT),
        (b"webhook-id", taken.event_id.encode()),
        (b"webhook-timestamp", str(int(at.timestamp())).encode()),
        (b"webhook-signature", signatures.encode()),
    ]


async def send(lanes: Lanes, taken: queue.Taken) -> queue.Attempt:
    """One attempt: connect, send and read the answer within one deadline (the receiver's
    timeout), reading at most `ANSWER_LIMIT` bytes of its body; past either, the connection is
    dropped. A receiver that drips its answer or sends one without end holds nothing."""
    at = utcnow()
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    lane = lanes.take(taken.webhook_id)
    try:
        async with asyncio.timeout(lanes.deadline):
            async with lane.stream(
                "POST",
                taken.url,
                headers=headers(taken, at),
                content=taken.body,
                extensions={"timeout": lanes.timeouts},
            ) as answer:
                status = answer.status
                read = 0
                async for chunk in answer.aiter_stream():
                    read += len(chunk)
                    if read > ANSWER_LIMIT:
                        break  # enough: leaving the stream unread closes the connection
        if not 200 <= status < 300:
            error = f"answered {status}"
    except (TimeoutError, httpcore.TimeoutException):
        status, error = None, "no answer in time"
    except (*TRANSPORT_ERRORS, OSError) as failure:
        status, error = None, f"{type(failure).__name__}: {failure}"[:500]
    except Exception as failure:  # whatever else went wrong with this request: it failed, the others go on
        log.exception("webhook.send_failed", webhook_id=taken.webhook_id, delivery_id=taken.delivery_id)
        status, error = None, f"{type(failure).__name__}: {failure}"[:500]
    finally:
        lanes.give_back(taken.webhook_id, lane)
    return queue.Attempt(taken, at, status, (time.perf_counter() - started) * 1000, error)


class Deliverer:
    """Takes due deliveries, sends them concurrently, records what came of them; until stopped.

    Sending and the database are a pipeline: each endpoint has up to `IN_FLIGHT` requests out and
    up to `AHEAD` more taken and waiting here, and each finished request starts the next at once,
    while one step at a time (a short write transaction on a thread) records what finished since
    the last step and takes more. The busier it is, the more each step carries."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.lease = dt.timedelta(seconds=settings.webhook_lease_seconds)
        # A delivery out is renewed by the next step when its lease ends sooner than an attempt
        # could (`_expiring`); one is started only while its lease has the margin left.
        self._attempt = dt.timedelta(seconds=settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS)
        self._margin = dt.timedelta(seconds=LEASE_MARGIN_SECONDS)
        self._leases: dict[int, dt.datetime] = {}  # deliveries out, and when their leases end
        self._in_flight: dict[int, int] = {}
        self._queued: dict[int, collections.deque[queue.Taken]] = {}
        self._finished: list[queue.Attempt] = []
        self._tasks: set[asyncio.Task[queue.Attempt]] = set()
        self._wake = asyncio.Event()
        self._sending = True
        self._lanes = Lanes(settings)
        self._last_sweep = 0.0
        self._busy = False  # the last step took deliveries: look again without asking first
        self._endpoints: list[int] = []  # the enabled endpoints, as the last step saw them

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            await self._run(stopping)
        finally:
            await self._lanes.aclose()

    async def _run(self, stopping: asyncio.Event) -> None:
        while True:
            started = time.monotonic()
            self._sending = not stopping.is_set()
            finished, self._finished = self._finished, []
            held = {webhook_id: self._held(webhook_id) for webhook_id in set(self._in_flight) | set(self._queued)}
            unsent = [] if self._sending else self._unqueue()
            expiring = self._expiring()
            try:
                taken, renewed = await asyncio.to_thread(
                    self._step, finished, held if self._sending else None, unsent, expiring
                )
            except Exception as error:  # the database went away: keep the process, try again
                # What finished is not recorded: those deliveries are sent again once their leases
                # run out (at least once).
                log.error("deliverer.step_failed", error=repr(error))
                if stopping.is_set() and not self._tasks:
                    return
                await self._idle(ERROR_PAUSE, stopping)
                continue
            for delivery_id in expiring:
                if delivery_id in self._leases:
                    self._leases[delivery_id] = renewed
            for item in taken:
                self._queued.setdefault(item.webhook_id, collections.deque()).append(item)
            self._send_queued()
            if stopping.is_set() and not self._tasks and not self._finished:
                return
            if not taken and not self._finished:
                await self._idle(self.settings.webhook_poll_seconds, stopping)
            else:  # busy: let others have the database between steps (each step carries more)
                await asyncio.sleep(max(0.0, STEP_GAP - (time.monotonic() - started)))
            if self._sending and time.monotonic() - self._last_sweep > RETENTION_EVERY:
                await asyncio.to_thread(self._sweep)

    def _held(self, webhook_id: int) -> int:
        """Deliveries of the endpoint this deliverer holds: out, or taken and waiting to go."""
        return self._in_flight.get(webhook_id, 0) + len(self._queued.get(webhook_id, ()))

    def _send_queued(self) -> None:
        """Start queued deliveries while their endpoint has room (not once stopping)."""
        if not self._sending:
            return
        # Only while its lease has the margin left for a step to renew it (`_expiring`): else
        # another deliverer (or this one) could take it again while it is out, and send it twice.
        last_start = utcnow() + self._margin
        for webhook_id, waiting in self._queued.items():
            while waiting and self._in_flight.get(webhook_id, 0) < IN_FLIGHT:
                item = waiting.popleft()
                if item.lease_until <= last_start:
                    continue  # it waited here too long (a slow endpoint): taken again when its lease runs out
                self._leases[item.delivery_id] = item.lease_until
                self._in_flight[webhook_id] = self._in_flight.get(webhook_id, 0) + 1
                task = asyncio.create_task(send(self._lanes, item))
                task.add_done_callback(self._sent)
                self._tasks.add(task)

    def _expiring(self) -> list[int]:
        """The deliveries out whose leases would end before an attempt begun now could."""
        soon = utcnow() + self._attempt
        return [delivery_id for delivery_id, until in self._leases.items() if until <= soon]

    def _sent(self, task: asyncio.Task[queue.Attempt]) -> None:
        self._tasks.discard(task)
        attempt = task.result()
        self._leases.pop(attempt.taken.delivery_id, None)
        self._in_flight[attempt.taken.webhook_id] -= 1
        self._finished.append(attempt)
        self._send_queued()
        self._wake.set()

    def _unqueue(self) -> list[int]:
        """The deliveries taken but not sent (when stopping): their leases are given back."""
        ids = [item.delivery_id for waiting in self._queued.values() for item in waiting]
        self._queued.clear()
        return ids

    async def _idle(self, timeout: float, stopping: asyncio.Event) -> None:
        """Until a request finishes, stopping begins, or `timeout` (the poll for new events)."""
        self._wake.clear()
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stopping.wait())]
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    def _step(
        self, finished: list[queue.Attempt], held: dict[int, int] | None, unsent: list[int], expiring: list[int]
    ) -> tuple[list[queue.Taken], dt.datetime]:
        """Record what finished, give back what will not be sent, renew the leases of `expiring`
        deliveries (out, and slow), and take for each endpoint what is due, then new events fanned
        out (up to what it may hold, minus what `held` says it holds; nothing when `held` is
        None): one short write transaction. When there is nothing to record, a read first says
        whether there is anything to do. Returns what it took, and until when it renewed."""
        renewed = utcnow() + self.lease
        room: dict[int, int] = {}
        if held is not None:
            if self._busy:
                endpoints = self._endpoints
            else:
                with self.database.reading() as session:
                    endpoints = queue.enabled_endpoints(session) if queue.has_work(session, utcnow()) else []
            room = {webhook_id: IN_FLIGHT + AHEAD - held.get(webhook_id, 0) for webhook_id in endpoints}
            room = {webhook_id: space for webhook_id, space in room.items() if space > 0}
        if not finished and not room and not unsent and not expiring:
            self._busy = False
            return [], renewed
        taken: list[queue.Taken] = []
        with self.database.writing() as session:
            queue.record(session, finished)
            queue.release(session, unsent)
            queue.renew(session, expiring, renewed)
            if room:
                taken = queue.take(session, room, self.lease)
            self._endpoints = queue.enabled_endpoints(session)
        self._busy = bool(taken)
        self._observe(finished)
        return taken, renewed

    def _observe(self, attempts: list[queue.Attempt]) -> None:
        now = utcnow()
        for attempt in attempts:
            outcome = "delivered" if attempt.delivered else "gone" if attempt.gone else "failed"
            metrics.WEBHOOK_DELIVERIES.labels(str(attempt.taken.webhook_id), outcome).inc()
            if attempt.delivered:
                metrics.WEBHOOK_LATENCY.observe((now - attempt.taken.event_created_at).total_seconds())
            else:
                log.warning(
                    "webhook.attempt_failed",
                    webhook_id=attempt.taken.webhook_id,
                    delivery_id=attempt.taken.delivery_id,
                    attempt=attempt.taken.attempt,
                    error=attempt.error,
                )

    def _sweep(self) -> None:
        self._last_sweep = time.monotonic()
        retention = dt.timedelta(days=self.settings.event_retention_days)
        try:
            with self.database.writing() as session:
                forgotten = queue.forget_old(session, retention)
        except Exception as error:  # tried again at the next sweep
            log.error("events.retention_failed", error=repr(error))
            return
        if forgotten:
            log.info("events.forgotten", events=forgotten)


def run_deliverer_process(parent: int) -> None:
    """A deliverer process's whole life (the target `rollcall serve` and `rollcall worker` start):
    delivers until SIGTERM, finishes what it has in flight, and stops by itself if its parent is gone."""
    from rollcall.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    name_this_process("rollcall-hooks")
    # The intake and the importer come first for the CPU: under load, deliveries wait a little
    # (measured: without this a busy deliverer and receiver took half the intake's throughput).
    os.nice(NICENESS)
    configure_logging()
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.secrets())
    # Its commits need not wait for the disk (SQLite): lost with a power cut, a delivery's outcome
    # is only sent again (at least once), and the writer's next synced commit syncs them anyway.
    database = Database(settings.database_url, settings, durable_commits=False)

    async def main() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)

        watcher = asyncio.create_task(stop_when_orphaned(parent))  # as SIGTERM does
        try:
            await Deliverer(database, settings).run(stopping)
        finally:
            watcher.cancel()

    log.info("deliverer.started", pid=os.getpid())
    try:
        uvloop.run(main()) if uvloop else asyncio.run(main())
    finally:
        database.dispose()
