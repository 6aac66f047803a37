"""The production path: several API processes and importers on one database, kills and drains."""

from __future__ import annotations

import collections
import concurrent.futures
import random
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.activity import service as activity
from rollcall.activity.models import Post, Signup, User
from rollcall.callpower.source import CallPower
from rollcall.calls import deliveries, statistics
from rollcall.calls import service as operations
from rollcall.calls.models import Call
from rollcall.db import Database
from tests.helpers import API_KEY, SEED_CALL, rollcall_process, serve_process, wait_for


def distinct_calls(count: int, mobiles: int, campaigns: tuple[int, ...]) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {
            **SEED_CALL,
            "mobile": f"+1555{rng.randrange(mobiles):07d}",
            "callpower_campaign_id": rng.choice(campaigns),
            "call_timestamp": f"2020-03-0{1 + n % 9}T12:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}",
            "status": rng.choice(["completed", "completed", "busy", "no-answer"]),
        }
        for n in range(count)
    ]


def states(database: Database) -> dict[str, int]:
    with database.reading() as session:
        return statistics.count_calls_by_state(session)


def stop_and_expect_clean_exits(importer: subprocess.Popen[bytes], servers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once (they drain side by side), then each must exit 0."""
    for process in (importer, *servers):
        process.send_signal(signal.SIGTERM)
    assert importer.wait(60) == 0
    assert [server.wait(60) for server in servers] == [0] * len(servers)


def map_campaigns(database: Database) -> dict[int, int]:
    """CallPower campaigns 1 and 2 go to campaign A's actions, 3 to campaign B's; returns cp id -> campaign."""
    with database.writing() as session:
        a = activity.create_campaign(session, internal_title="A")
        b = activity.create_campaign(session, internal_title="B")
        mapping = {1: a.id, 2: a.id, 3: b.id}
        for callpower_id, campaign_id in mapping.items():
            action = activity.create_action(session, campaign_id=campaign_id, name=f"Call {callpower_id}")
            operations.map_campaign(session, action.id, callpower_id)
    return mapping


def test_two_api_processes_and_three_importers_make_everything_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    database = Database(postgres_url)
    campaign_of = map_campaigns(database)
    servers = [serve_process(postgres_url, tmp_path / f"serve-{n}.log") for n in range(2)]
    importers = rollcall_process(["worker", "--concurrency", "3"], postgres_url, tmp_path / "worker.log")
    try:
        unique = distinct_calls(1500, mobiles=150, campaigns=(1, 2, 3))
        # Every call at least twice, a third of them three times, to both API processes, shuffled.
        sends = [
            (call, servers[n % 2][1]) for call in unique for n in range(2 + (hash(call["call_timestamp"]) % 3 == 0))
        ]
        random.Random(3).shuffle(sends)

        local = threading.local()

        def send(item: tuple[dict[str, Any], str]) -> int:
            call, url = item
            clients = local.__dict__.setdefault("clients", {})
            client = clients.get(url) or clients.setdefault(
                url,
                httpx.Client(
                    base_url=url,
                    headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY},
                    timeout=60,
                ),
            )
            return client.post("/api/v1/callpower/call", json=call).status_code

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            statuses = collections.Counter(pool.map(send, sends))
        assert statuses == {200: len(sends)}
        assert len(sends) > 3000

        wait_for(lambda: states(database)["imported"] == len(unique), timeout=120)
    finally:
        stop_and_expect_clean_exits(importers, [server for server, _ in servers])

    expected_users = {call["mobile"] for call in unique}
    expected_quantity = collections.Counter(
        (call["mobile"], campaign_of[call["callpower_campaign_id"]]) for call in unique
    )
    with database.reading() as session:
        assert states(database) == {**dict.fromkeys(states(database), 0), "imported": len(unique)}
        assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == len(unique)
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(unique)
        assert session.scalar(sa.select(sa.func.count(sa.distinct(Post.call_id)))) == len(unique)
        users = dict(session.execute(sa.select(User.id, User.mobile)).all())
        assert sorted(users.values()) == sorted(expected_users)
        signups = session.execute(sa.select(Signup.northstar_id, Signup.campaign_id, Signup.quantity)).all()
        assert {(users[user], campaign): quantity for user, campaign, quantity in signups} == expected_quantity
        posts_per_signup = dict(
            session.execute(sa.select(Post.signup_id, sa.func.count()).group_by(Post.signup_id)).all()
        )
        quantities = dict(session.execute(sa.select(Signup.id, Signup.quantity)).all())
        assert posts_per_signup == quantities
    database.dispose()


def test_importer_killed_mid_batch_leaves_every_call_imported_exactly_once(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    map_campaigns(database)
    backlog = distinct_calls(3000, mobiles=400, campaigns=(1, 2, 3))
    with database.writing() as session:
        deliveries.store_deliveries(
            session, [CallPower("US").check(c, raw="{}", content_type=None) for c in backlog], CallPower()
        )
    first = rollcall_process(["worker"], database_url, tmp_path / "worker.log")
    wait_for(lambda: states(database)["imported"] >= 300, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    killed_at = states(database)["imported"]
    assert killed_at < len(backlog), "the importer finished before it could be killed"

    second = rollcall_process(["worker"], database_url, tmp_path / "worker.log")
    try:
        wait_for(lambda: states(database)["imported"] == len(backlog), timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(backlog)
        assert session.scalar(sa.select(sa.func.count(sa.distinct(Post.call_id)))) == len(backlog)
        assert session.scalar(sa.select(sa.func.sum(Signup.quantity))) == len(backlog)


def test_sigterm_stops_an_importer_between_calls(database_url: str, database: Database, tmp_path: Path) -> None:
    map_campaigns(database)
    backlog = distinct_calls(4000, mobiles=400, campaigns=(1, 2, 3))
    with database.writing() as session:
        deliveries.store_deliveries(
            session, [CallPower("US").check(c, raw="{}", content_type=None) for c in backlog], CallPower()
        )
    importer = rollcall_process(["worker"], database_url, tmp_path / "worker.log")
    wait_for(lambda: states(database)["imported"] >= 200, timeout=60)
    importer.send_signal(signal.SIGTERM)
    assert importer.wait(30) == 0

    counts = states(database)
    assert counts["imported"] + counts["received"] == len(backlog)
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == counts["imported"]


def test_sigterm_drains_the_intake(database_url: str, database: Database, tmp_path: Path) -> None:
    server, url = serve_process(database_url, tmp_path / "serve.log")
    answers: list[int | str] = []
    acknowledged: list[str] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(
            base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
        ) as client:
            n = 0
            while not stop.is_set():
                stamp = f"2021-01-01T00:00:00.{worker * 100_000 + n + 1:06d}"
                n += 1
                try:
                    status = client.post(
                        "/api/v1/callpower/call", json={**SEED_CALL, "call_timestamp": stamp}
                    ).status_code
                except httpx.TransportError as error:
                    answers.append(type(error).__name__)
                    return
                answers.append(status)
                if status == 200:
                    acknowledged.append(stamp + "Z")

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 200, timeout=30)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        stop.set()
        server.kill()  # nothing left to kill when the test went well
        for thread in threads:
            thread.join(30)

    # Every answer was a 200; the rest found the server closed (a request sent on a kept-alive
    # connection as the server closed it is reset, unanswered, and CallPower sends it again on
    # its next run). Every acknowledged call is stored.
    assert {a for a in answers if not isinstance(a, int)} <= {
        "ConnectError",
        "ReadError",
        "WriteError",
        "RemoteProtocolError",
    }
    assert {a for a in answers if isinstance(a, int)} == {200}
    with database.reading() as session:
        stored = set(session.scalars(sa.select(Call.record["call_timestamp"].as_string())))
    assert set(acknowledged) <= stored


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_processes_take_turns_writing_one_sqlite_file(database_url: str, tmp_path: Path) -> None:
    # Two API processes and an importer on one SQLite file, under load, with a busy timeout of
    # 50 ms: without the shared write lock, writers give up ("database is locked": about 2% of
    # these calls were answered 503 when the lock was taken out).
    database = Database(database_url)
    map_campaigns(database)
    short = {"ROLLCALL_SQLITE_BUSY_TIMEOUT_MS": "50"}
    servers = [serve_process(database_url, tmp_path / f"serve-{n}.log", **short) for n in range(2)]
    importer = rollcall_process(["worker"], database_url, tmp_path / "worker.log", **short)
    try:
        unique = distinct_calls(600, mobiles=80, campaigns=(1, 2, 3))
        sends = [(call, servers[n % 2][1]) for n, call in enumerate(unique * 2)]

        def send(item: tuple[dict[str, Any], str]) -> int:
            call, url = item
            with httpx.Client(
                base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}, timeout=60
            ) as client:
                return client.post("/api/v1/callpower/call", json=call).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = collections.Counter(pool.map(send, sends))
        assert statuses == {200: len(sends)}
        wait_for(lambda: states(database)["imported"] == len(unique), timeout=60)
    finally:
        stop_and_expect_clean_exits(importer, [server for server, _ in servers])
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == len(unique)
    database.dispose()
