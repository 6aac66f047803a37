"""A 200 means stored: killing the server hard during a burst loses no acknowledged call."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import signal
import threading
from pathlib import Path

import httpx
import sqlalchemy as sa

from rollcall.calls.models import Call
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import API_KEY, SEED_CALL, rollcall_process, serve_process, wait_for


def count_state(database: Database, state: str) -> int:
    with database.reading() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.state == state)) or 0


def test_sigkill_during_a_burst_loses_no_acknowledged_call(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    server, url = serve_process(settings.database_url, tmp_path / "serve.log")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

    def send(worker: int) -> None:
        with httpx.Client(
            base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
        ) as client:
            n = 0
            while not stop.is_set():
                stamp = (start + dt.timedelta(seconds=worker * 1_000_000 + n)).isoformat()
                n += 1
                try:
                    answer = client.post("/api/v1/callpower/call", json={**SEED_CALL, "call_timestamp": stamp})
                except httpx.TransportError:
                    return
                if answer.status_code == 200:
                    with lock:
                        acknowledged.append(stamp.replace("+00:00", "Z"))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 300, timeout=30)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        for thread in threads:
            thread.join(30)

    with database.reading() as session:
        stored = set(session.scalars(sa.select(Call.record["call_timestamp"].as_string())))
    missing = set(acknowledged) - stored
    assert len(acknowledged) >= 300
    assert not missing, f"{len(missing)} acknowledged calls were lost"

    # After a restart the service works off what it had stored: no action is mapped, so every
    # stored call ends up waiting in `unmapped`, none stuck in between.
    server, _ = serve_process(settings.database_url, tmp_path / "serve.log")
    try:
        wait_for(lambda: count_state(database, "unmapped") == len(stored), timeout=60)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0


def writer_processes(parent: int) -> list[int]:
    """The writer process(es) `rollcall serve` (pid `parent`) started, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in command and (entry / "comm").read_text().strip() == "rollcall-writer":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_writer_process_loses_nothing_acknowledged_and_is_started_again(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    server, url = serve_process(settings.database_url, tmp_path / "serve.log")
    try:
        (writer,) = writer_processes(server.pid)
        answers: dict[str, int] = {}
        start = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
        with httpx.Client(
            base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}, timeout=30
        ) as client:

            def send(n: int) -> int:
                stamp = (start + dt.timedelta(seconds=n)).isoformat()
                status = client.post("/api/v1/callpower/call", json={**SEED_CALL, "call_timestamp": stamp}).status_code
                answers[stamp.replace("+00:00", "Z")] = status
                return status

            assert all(send(n) == 200 for n in range(20))
            os.kill(writer, signal.SIGKILL)
            # While it is down the intake says so (503, nothing acknowledged); then it is back.
            statuses = [send(n) for n in range(20, 40)]
            assert set(statuses) <= {200, 503}
            wait_for(lambda: send(len(answers) + 100) == 200, timeout=30)
            (replacement,) = writer_processes(server.pid)
            assert replacement != writer

        with database.reading() as session:
            stored = set(session.scalars(sa.select(Call.record["call_timestamp"].as_string())))
        acknowledged = {stamp for stamp, status in answers.items() if status == 200}
        assert acknowledged <= stored
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0


def test_the_writer_process_does_not_outlive_a_killed_service(settings: Settings, tmp_path: Path) -> None:
    server, _ = serve_process(settings.database_url, tmp_path / "serve.log")
    (writer,) = writer_processes(server.pid)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    wait_for(lambda: not alive(writer), timeout=10)


def test_a_stopped_service_stops_its_writer_process(settings: Settings, tmp_path: Path) -> None:
    server, _ = serve_process(settings.database_url, tmp_path / "serve.log")
    (writer,) = writer_processes(server.pid)
    server.send_signal(signal.SIGTERM)
    assert server.wait(30) == 0
    assert not alive(writer)


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def test_no_process_of_a_killed_service_lingers_on_its_port(settings: Settings, tmp_path: Path) -> None:
    """`serve --workers 2` killed outright: its API workers and writer stop by themselves, and
    the port is free for the next start."""
    server, url = serve_process(settings.database_url, tmp_path / "serve.log", "--workers", "2")
    started = [pid for pid in children_of(server.pid) if alive(pid)]
    assert len(started) >= 3  # two API workers and the writer (and multiprocessing's tracker)
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    wait_for(lambda: not any(alive(pid) for pid in started), timeout=45)

    def refused() -> bool:
        try:
            httpx.post(f"{url}/api/v1/callpower/call", timeout=1)
        except httpx.TransportError:
            return True
        return False

    assert refused()


def test_importers_stopped_while_they_start_exit_cleanly(settings: Settings, tmp_path: Path) -> None:
    """`rollcall worker --concurrency 3` stopped the moment its importer processes are launched
    (before they listen for SIGTERM): each stops, and the worker exits 0."""
    log = tmp_path / "worker.log"
    worker = rollcall_process(["worker", "--concurrency", "3"], settings.database_url, log)
    try:
        wait_for(lambda: children_of(worker.pid), timeout=30)  # it listens for SIGTERM before launching any
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()
    finally:
        worker.kill()


def test_the_writer_process_takes_bodies_in_any_size_and_mix(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    """Through `rollcall serve`: bodies near the 64 KiB limit (each spans several reads of the
    writer's socket), small ones, forms and invalid ones, sent at once, each get their own
    answer and are stored whole."""
    server, url = serve_process(settings.database_url, tmp_path / "serve.log")
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC)

    def body(n: int) -> dict[str, str | int]:
        stamp = (start + dt.timedelta(seconds=n)).isoformat()
        return {**SEED_CALL, "call_timestamp": stamp, "notes": "x" * (60_000 if n % 3 == 0 else n)}

    try:
        with httpx.Client(
            base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}, timeout=30
        ) as client:

            def send(n: int) -> tuple[int, int]:
                if n % 7 == 1:  # invalid: kept as rejected, answered 422
                    return n, client.post("/api/v1/callpower/call", json={**body(n), "mobile": ""}).status_code
                if n % 7 == 2:  # a form
                    data = {key: str(value) for key, value in body(n).items()}
                    return n, client.post("/api/v1/callpower/call", data=data).status_code
                return n, client.post("/api/v1/callpower/call", json=body(n)).status_code

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                answers = dict(pool.map(send, range(140)))
        assert answers == {n: 422 if n % 7 == 1 else 200 for n in range(140)}
        with database.reading() as session:
            rows = session.execute(sa.select(Call.state, sa.func.length(Call.raw))).all()
        assert len(rows) == 140
        assert sorted(state for state, _ in rows).count("rejected") == 20
        assert sum(1 for _, length in rows if length > 60_000) == sum(1 for n in range(140) if n % 3 == 0)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
