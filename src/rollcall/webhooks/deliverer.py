"""The deliverer: an asyncio loop of its own (a process started by `rollcall serve` and `rollcall
worker`) that sends each delivery as Standard Webhooks says, with a pooled HTTP client (httpx).

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
import contextlib
import datetime as dt
import os
import signal
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
import structlog
from standardwebhooks import Webhook as Signer

from rollcall import metrics
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.processes import name_this_process, stop_when_orphaned
from rollcall.times import utcnow
from rollcall.webhooks import queue
from rollcall.webhooks.endpoints import refused_address

log = structlog.get_logger("rollcall.webhooks")

IN_FLIGHT = 32  # requests out at once to one endpoint
RETENTION_EVERY = 300.0  # seconds between sweeps of events past their retention
USER_AGENT = "rollcall-webhooks"


class AddressRefused(httpx.TransportError):
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
            reason = refused_address(address)
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


def client(settings: Settings) -> httpx.AsyncClient:
    """The pooled client deliveries go out on: keep-alive per endpoint, the receiver's timeout,
    no redirects (a receiver answers; it does not send us elsewhere), no proxy from the environment."""
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=None, max_keepalive_connections=256))
    if not settings.webhooks_allow_private:
        # httpx takes no network backend; its pool (httpcore) does: give it ours.
        transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001
            ssl_context=httpx.create_ssl_context(),
            max_connections=None,
            max_keepalive_connections=256,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(),
        )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        headers={"user-agent": USER_AGENT},
    )


def headers(taken: queue.Taken, at: dt.datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (its own timestamp, the event's id)."""
    body = taken.body.decode()
    signatures = " ".join(Signer(secret).sign(taken.event_id, at, body) for secret in taken.secrets)
    return {
        "content-type": "application/json",
        "webhook-id": taken.event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


async def send(http: httpx.AsyncClient, taken: queue.Taken) -> queue.Attempt:
    at = utcnow()
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        answer = await http.post(taken.url, content=taken.body, headers=headers(taken, at))
        status = answer.status_code
        if not 200 <= status < 300:
            error = f"answered {status}"
    except httpx.TimeoutException:
        error = "no answer in time"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"[:500] or type(failure).__name__
    except OSError as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    return queue.Attempt(taken, at, status, (time.perf_counter() - started) * 1000, error)


class Deliverer:
    """Takes due deliveries, sends them concurrently, records what came of them; until stopped."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.lease = dt.timedelta(seconds=settings.webhook_lease_seconds)
        self._in_flight: dict[int, int] = {}
        self._tasks: set[asyncio.Task[queue.Attempt]] = set()
        self._last_sweep = 0.0

    async def run(self, stopping: asyncio.Event) -> None:
        async with client(self.settings) as http:
            while not (stopping.is_set() and not self._tasks):
                started = 0
                if not stopping.is_set():
                    started = await self._start_some(http)
                finished = await self._wait(0 if started else self.settings.webhook_poll_seconds, stopping)
                if finished:
                    await asyncio.to_thread(self._record, finished)
                if not stopping.is_set() and time.monotonic() - self._last_sweep > RETENTION_EVERY:
                    await asyncio.to_thread(self._sweep)

    async def _start_some(self, http: httpx.AsyncClient) -> int:
        taken = await asyncio.to_thread(self._take)
        for item in taken:
            self._in_flight[item.webhook_id] = self._in_flight.get(item.webhook_id, 0) + 1
            task = asyncio.create_task(send(http, item))
            self._tasks.add(task)
        return len(taken)

    async def _wait(self, timeout: float, stopping: asyncio.Event) -> list[queue.Attempt]:
        """Attempts that finished within `timeout` (at once if some already have)."""
        if not self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout)
            return []
        done, _ = await asyncio.wait(self._tasks, timeout=timeout or 0.02, return_when=asyncio.FIRST_COMPLETED)
        finished = []
        for task in done:
            self._tasks.discard(task)
            attempt = task.result()
            self._in_flight[attempt.taken.webhook_id] -= 1
            finished.append(attempt)
        return finished

    def _take(self) -> list[queue.Taken]:
        """Fan new events out and take what is due, in one short write transaction; only a read
        when there is nothing to do, or no endpoint has room for another request."""
        with self.database.reading() as session:
            if not queue.has_work(session, utcnow()):
                return []
            endpoints = queue.enabled_endpoints(session)
        room = {webhook_id: IN_FLIGHT - self._in_flight.get(webhook_id, 0) for webhook_id in endpoints}
        if not any(space > 0 for space in room.values()):
            return []
        with self.database.writing() as session:
            queue.fan_out(session)
            return queue.take(session, room, self.lease)

    def _record(self, attempts: list[queue.Attempt]) -> None:
        with self.database.writing() as session:
            queue.record(session, attempts)
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
        with self.database.writing() as session:
            forgotten = queue.forget_old(session, retention)
        if forgotten:
            log.info("events.forgotten", events=forgotten)


def run_deliverer_process(parent: int) -> None:
    """A deliverer process's whole life (the target `rollcall serve` and `rollcall worker` start):
    delivers until SIGTERM, finishes what it has in flight, and stops by itself if its parent is gone."""
    from rollcall.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us
    name_this_process("rollcall-hooks")
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    database = Database.for_settings(settings)

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
        asyncio.run(main())
    finally:
        database.dispose()
