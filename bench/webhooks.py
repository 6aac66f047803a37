"""Webhooks benchmark: delivery rate, event latency, and what webhooks cost the intake.

    python bench/webhooks.py [--backlog 100000] [--postgres URL] [--rate 200] [--seconds 30]
                             [--rounds 3] [--stored 50000] [--skip ...]

A receiver of our own (bench/receiver.py: plain ASGI under uvicorn, every signature checked with
the `standardwebhooks` reference library, answered 204) stands for the organization's system.

1. **Delivery rate**: a backlog of `--backlog` calls is imported while an endpoint subscribed to
   `post.created` is disabled; then it is enabled and `rollcall worker` delivers them all
   (fan-out, leases, sends, outcomes) with `--deliverers` deliverer processes
   (`ROLLCALL_WEBHOOK_DELIVERERS`). Deliveries/s = events / (last arrival - enable). On SQLite,
   and on PostgreSQL with `--postgres`.
2. **Event latency**: `rollcall serve` with that endpoint, calls sent at `--rate`/s for
   `--seconds` from one client; for each post, the time from its call's 200 to the receiver
   holding its `post.created` (p50, p99, max).
3. **Intake with webhooks**: `bench/intake.py`'s measure (wrk, 50 connections, alternating
   rounds) of a bare endpoint, `rollcall serve` without webhooks, and `rollcall serve` with two
   endpoints subscribed to `post.created` (`--events`): the receiver, and a dead one (it accepts
   connections and never answers, so each request waits out the 10 s timeout). Ratios to the
   bare endpoint.

Medians over the rounds are what docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from data import map_backlog_campaigns, store_backlog  # noqa: E402
from intake import KEY, wrk  # noqa: E402
from postgres import drop_database, fresh_database  # noqa: E402
from processes import ROLLCALL, children, free_port, start, start_bare, stop, wait_ready  # noqa: E402

from rollcall.config import Settings  # noqa: E402
from rollcall.db import Database, migrate  # noqa: E402
from rollcall.events import EventType  # noqa: E402
from rollcall.webhooks import endpoints  # noqa: E402

OPEN = {"ROLLCALL_WEBHOOKS_ALLOW_HTTP": "true", "ROLLCALL_WEBHOOKS_ALLOW_PRIVATE": "true"}
SETTINGS = Settings(webhooks_allow_http=True, webhooks_allow_private=True)


class Receiver:
    """bench/receiver.py in a uvicorn process of its own."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # One client for every poll: a new one per call builds a TLS context each time, and the
        # bench's polls then took a quarter of a core from what it measures.
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.process = start(
            [
                "nice",
                "-n",
                "19",  # it stands for another machine: on this one it takes only the CPU left over
                sys.executable,
                "-m",
                "uvicorn",
                "receiver:app",
                "--app-dir",
                str(HERE),
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            dict(os.environ),
            workdir / f"receiver-{self.port}.log",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.stats()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise SystemExit("the receiver did not start") from None
                time.sleep(0.1)

    def use_secret(self, secret: str) -> None:
        self.client.post("/secret", content=secret).raise_for_status()

    def stats(self, arrivals: bool = False) -> dict[str, object]:
        answer = self.client.get("/stats", params={"arrivals": 1} if arrivals else None)
        return dict(answer.json())

    def stop(self) -> None:
        self.client.close()
        stop(self.process)


class DeadReceiver:
    """Accepts connections and never answers (a receiver that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)


def add_endpoint(url: str, receiver_url: str, events: list[str], *, enabled: bool = True) -> tuple[int, str]:
    database = Database(url, SETTINGS)
    with database.writing() as session:
        webhook, secret = endpoints.create_webhook(
            session, url=receiver_url, events=events, description="bench", settings=SETTINGS
        )
        if not enabled:
            endpoints.update_webhook(session, webhook.id, {"enabled": False}, SETTINGS)
        webhook_id = webhook.id
    database.dispose()
    return webhook_id, secret


def enable(url: str, webhook_id: int) -> None:
    database = Database(url, SETTINGS)
    with database.writing() as session:
        endpoints.update_webhook(session, webhook_id, {"enabled": True}, SETTINGS)
    database.dispose()


def count_events(url: str, type_: str) -> int:
    import sqlalchemy as sa

    database = Database(url, SETTINGS)
    with database.reading() as session:
        count = int(session.scalar(sa.text("SELECT count(*) FROM events WHERE type = :t"), {"t": type_}) or 0)
    database.dispose()
    return count


def wait_for(condition, timeout: float, what: str, every: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def delivery_rate(url: str, label: str, backlog: int, workdir: Path, deliverers: int) -> None:
    print(
        f"\n{label}: delivery rate, {backlog} calls imported, then their post.created delivered"
        f" by `rollcall worker` with ROLLCALL_WEBHOOK_DELIVERERS={deliverers}"
    )
    receiver = Receiver(workdir)
    try:
        webhook_id, secret = add_endpoint(url, f"{receiver.url}/hook", [EventType.POST_CREATED], enabled=False)
        receiver.use_secret(secret)
        store_backlog(url, backlog)
        env = {**os.environ, **OPEN, "ROLLCALL_DATABASE_URL": url}
        worker = start([ROLLCALL, "worker"], env, workdir / f"worker-import-{label}.log")
        try:
            wait_for(lambda: _waiting(url) == 0, 600, "the import")
        finally:
            stop(worker)
        events = count_events(url, EventType.POST_CREATED)
        print(f"  {events} post.created events stored; enabling the endpoint")
        many = {**env, "ROLLCALL_WEBHOOK_DELIVERERS": str(deliverers)}
        worker = start([ROLLCALL, "worker"], many, workdir / f"worker-deliver-{label}.log")
        try:
            time.sleep(1)  # the worker's start-up is not the deliverer's rate
            enabled_at = time.time()
            enable(url, webhook_id)
            # The rate comes from the receiver's own last arrival: polling seldom costs no precision.
            wait_for(lambda: receiver.stats()["distinct"] >= events, 600, "the deliveries", every=0.5)
            hooks = [
                pid for pid in children(worker.pid) if Path(f"/proc/{pid}/comm").read_text().strip() == "rollcall-hooks"
            ]
            cpu = _cpu_seconds(hooks)
        finally:
            stop(worker)
        stats = receiver.stats()
        seconds = float(stats["last"]) - enabled_at  # type: ignore[arg-type]
        print(
            f"  delivered {stats['distinct']} events ({stats['requests']} requests, {stats['bad']} bad signatures)"
            f" in {seconds:.1f} s: {int(stats['distinct']) / seconds:.0f} deliveries/s"  # type: ignore[call-overload]
        )
        print(f"  deliverers' CPU: {cpu * 1e6 / int(stats['distinct']):.0f} µs per delivery")  # type: ignore[call-overload]
    finally:
        receiver.stop()


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes have used so far (a figure less shaken by a busy machine
    than their rate: it counts what they spend, not what they get)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def bare_sender(workdir: Path, count: int = 20_000) -> None:
    """The ceiling on this machine: the same receiver, the same signed requests (a post's size),
    32 at a time from a plain httpcore loop with no database at all."""
    import base64

    import httpcore
    import orjson
    from standardwebhooks import Webhook

    receiver = Receiver(workdir)
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    receiver.use_secret(secret)
    signer = Webhook(secret)
    body = orjson.dumps({"type": "post.created", "timestamp": "x", "data": {"call_timestamp": "x", "pad": "x" * 600}})

    async def run() -> float:
        lanes = [httpcore.AsyncConnectionPool(max_connections=1) for _ in range(32)]
        url = f"{receiver.url}/hook".encode()

        async def lane(pool: httpcore.AsyncConnectionPool, numbers: range) -> None:
            for n in numbers:
                at = dt.datetime.now(dt.UTC)
                signature = signer.sign(f"evt_{n}", at, body.decode())
                headers = [
                    (b"webhook-id", f"evt_{n}".encode()),
                    (b"webhook-timestamp", str(int(at.timestamp())).encode()),
                    (b"webhook-signature", signature.encode()),
                    (b"content-type", b"application/json"),
                ]
                answer = await pool.request(b"POST", url, headers=headers, content=body)
                assert answer.status == 204, answer.status

        started = time.perf_counter()
        await asyncio.gather(*(lane(pool, range(n, count, 32)) for n, pool in enumerate(lanes)))
        return count / (time.perf_counter() - started)

    try:
        print(f"\nbare sender (no database), {count} signed requests to the same receiver: {asyncio.run(run()):.0f}/s")
    finally:
        receiver.stop()


def _waiting(url: str) -> int:
    import sqlalchemy as sa

    database = Database(url, SETTINGS)
    with database.reading() as session:
        count = int(session.scalar(sa.text("SELECT count(*) FROM calls WHERE state = 'received'")) or 0)
    database.dispose()
    return count


def _call(n: int, base: dt.datetime) -> dict[str, object]:
    return {
        "mobile": f"+1555{n * 7919 % 10_000_000:07d}",
        "status": "completed",
        "call_timestamp": (base + dt.timedelta(microseconds=n)).isoformat(),
        "call_duration": 30,
        "campaign_target_title": "Representative",
        "campaign_target_district": "FL-7",
        "callpower_campaign_id": 1,
        "campaign_target_name": "Mickey Mouse",
        "callpower_campaign_name": "Latency",
        "number_dialed_into": "+15554441234",
    }


async def _send_at_rate(base_url: str, rate: int, seconds: int) -> dict[dt.datetime, float]:
    answered: dict[dt.datetime, float] = {}
    base = dt.datetime(2026, 1, 1)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=base_url, headers={"X-DS-Importer-API-Key": KEY}) as client:

        async def one(n: int) -> None:
            call = _call(n, base)
            response = await client.post("/api/v1/callpower/call", json=call)
            response.raise_for_status()
            answered[dt.datetime.fromisoformat(str(call["call_timestamp"]))] = time.time()

        tasks = []
        for n in range(rate * seconds):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return answered


def latency(url: str, label: str, rate: int, seconds: int, workdir: Path) -> None:
    print(f"\n{label}: event latency, {rate} calls/s for {seconds} s, from the call's 200 to its post.created")
    receiver = Receiver(workdir)
    port = free_port()
    env = {**os.environ, **OPEN, "ROLLCALL_DATABASE_URL": url, "CALLPOWER_API_KEY": KEY}
    try:
        _, secret = add_endpoint(url, f"{receiver.url}/hook", [EventType.POST_CREATED])
        receiver.use_secret(secret)
        serve = start([ROLLCALL, "serve", "--port", str(port)], env, workdir / f"serve-latency-{label}.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}/api/v1/callpower/call", serve)
            answered = asyncio.run(_send_at_rate(f"http://127.0.0.1:{port}", rate, seconds))
            wait_for(lambda: len(receiver.stats(arrivals=True)["arrivals"]) >= len(answered), 120, "the events")  # type: ignore[arg-type]
        finally:
            stop(serve)
        arrivals = receiver.stats(arrivals=True)["arrivals"]
        delays = sorted(
            arrived - answered[dt.datetime.fromisoformat(stamp).replace(tzinfo=None)]
            for stamp, arrived in arrivals.items()  # type: ignore[attr-defined]
        )
        print(
            f"  {len(delays)} events: p50 {statistics.median(delays) * 1000:.0f} ms,"
            f" p99 {delays[int(len(delays) * 0.99)] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
        )
    finally:
        receiver.stop()


def intake_with_webhooks(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"\nintake, 50 connections: bare vs rollcall vs rollcall with a healthy and a dead endpoint"
        f" ({args.rounds} rounds of {args.seconds_wrk} s)"
    )
    receiver = Receiver(workdir)
    dead = DeadReceiver()
    servers: dict[str, tuple[int, object]] = {}
    processes = []
    try:
        for name in ("plain", "webhooks"):
            url = f"sqlite:///{workdir / f'intake-{name}.db'}"
            database = Database(url, SETTINGS)
            migrate(database)
            database.dispose()
            map_backlog_campaigns(url)
            if args.stored:
                store_backlog(url, args.stored, day="2017-11-06", state="imported")
            if name == "webhooks":
                subscribed = [str(kind) for kind in args.events]
                _, secret = add_endpoint(url, f"{receiver.url}/hook", subscribed)
                receiver.use_secret(secret)
                add_endpoint(url, dead.url, subscribed)
            port = free_port()
            env = {**os.environ, **OPEN, "ROLLCALL_DATABASE_URL": url, "CALLPOWER_API_KEY": KEY}
            process = start([ROLLCALL, "serve", "--port", str(port)], env, workdir / f"serve-{name}.log")
            processes.append(process)
            wait_ready(f"http://127.0.0.1:{port}/api/v1/callpower/call", process)
            servers[name] = (port, process)
        bare_port = free_port()
        bare = start_bare(bare_port, dict(os.environ), workdir / "bare.log")
        processes.append(bare)
        wait_ready(f"http://127.0.0.1:{bare_port}/api/v1/callpower/call", bare)
        ports = {"bare": bare_port, "plain": servers["plain"][0], "webhooks": servers["webhooks"][0]}
        for port in ports.values():
            wrk(port, 50, 2)  # warm up
        results: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
        urls = {name: f"sqlite:///{workdir / f'intake-{name}.db'}" for name in ("plain", "webhooks")}

        def settled() -> bool:
            """Both servers have imported everything, and the receiver holds every post.created:
            each round starts from rest (a round of wrk leaves more than a deliverer sends in the
            next two rounds of the others, and that work would be charged to them)."""
            imported = all(_waiting(url) == 0 for url in urls.values())
            return imported and int(receiver.stats()["distinct"]) >= count_events(urls["webhooks"], "post.created")

        for round_number in range(args.rounds):
            for name, port in ports.items():
                wait_for(settled, 600, "the servers to settle")
                figures = wrk(port, 50, args.seconds_wrk)
                results[name].append(figures)
                print(
                    f"  round {round_number + 1} {name:8s} {figures['rps']:8.0f} req/s"
                    f"  p50 {figures['p50']:7.2f} ms  p99 {figures['p99']:7.2f} ms"
                )
        for name in ("plain", "webhooks"):
            ratios = [o["rps"] / b["rps"] for o, b in zip(results[name], results["bare"], strict=True)]
            print(
                f"  median ratio {name}/bare: {statistics.median(ratios):.2f} (rounds: "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + f"), p99 {statistics.median(r['p99'] for r in results[name]):.2f} ms"
            )
        stats = receiver.stats()
        print(
            f"  the healthy receiver got {stats['distinct']} events ({stats['bad']} bad signatures);"
            f" the dead one holds {len(dead.held)} connections"
        )
    finally:
        for process in processes:
            stop(process)  # type: ignore[arg-type]
        receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--postgres", help="also on PostgreSQL: an admin URL (databases are made and dropped)")
    parser.add_argument(
        "--deliverers", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2], help="e.g. 1,2"
    )
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument(
        "--events",
        type=lambda text: text.split(","),
        default=["post.created"],
        help="what the two endpoints of the intake rounds subscribe to (comma-separated)",
    )
    parser.add_argument("--seconds", type=int, default=30, help="how long calls are sent for the latency")
    parser.add_argument("--seconds-wrk", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stored", type=int, default=50_000, help="calls already stored for the intake rounds")
    parser.add_argument("--skip", action="append", default=[], choices=["rate", "latency", "intake", "sqlite", "bare"])
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"))
    made: list[str] = []

    def new(label: str, name: str) -> str:
        """A migrated database whose CallPower campaign 1 is mapped to an action."""
        if label == "PostgreSQL":
            made.append(fresh_database(args.postgres))
            return made[-1]
        url = f"sqlite:///{workdir / f'{name}.db'}"
        database = Database(url, SETTINGS)
        migrate(database)
        database.dispose()
        map_backlog_campaigns(url)
        return url

    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        workdir = Path(directory)
        labels = ([] if "sqlite" in args.skip else ["SQLite"]) + (["PostgreSQL"] if args.postgres else [])
        if "rate" not in args.skip and "bare" not in args.skip:
            bare_sender(workdir)
        try:
            for label in labels:
                if "rate" not in args.skip:
                    for deliverers in args.deliverers:
                        delivery_rate(new(label, f"rate-{deliverers}"), label, args.backlog, workdir, deliverers)
                if "latency" not in args.skip:
                    latency(new(label, "latency"), label, args.rate, args.seconds, workdir)
        finally:
            for url in made:
                drop_database(args.postgres, url)
        if "intake" not in args.skip:
            intake_with_webhooks(args, workdir)


if __name__ == "__main__":
    main()
