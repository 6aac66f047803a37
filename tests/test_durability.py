"""A 200 means stored: killing the server hard during a burst loses no acknowledged call."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path

import httpx
import sqlalchemy as sa

from rollcall.callpower.models import Call
from rollcall.config import Settings
from rollcall.db import Database
from tests.conftest import API_KEY, SEED_CALL, serve_process, wait_for


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
        with httpx.Client(base_url=url, headers={"X-DS-Importer-API-Key": API_KEY}) as client:
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
    wait_for(lambda: len(acknowledged) >= 300, timeout=30)
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
