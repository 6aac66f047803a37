"""Faults: a full or read-only disk, a locked database, PostgreSQL restarting. The intake answers
503 (never 200 for a call it did not store), recovers by itself, and the importer resumes.

Process kills are in test_durability.py (the API) and test_production.py (an importer).
A read-only disk is made the way it happens: ext4 meets an error and turns itself read-only
(a mounted filesystem with files open for writing cannot be remounted read-only by hand).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.calls.models import Call
from rollcall.db import Database, migrate
from tests.helpers import API_KEY, CONTRACT_PATH, SEED_CALL, RunningApp, calls_in, map_seed_campaign, wait_for

UNAVAILABLE = {"error": {"code": 503, "message": "The service cannot store anything right now; try again shortly."}}


def stored_timestamps(database: Database) -> set[str]:
    with database.reading() as session:
        return set(session.scalars(sa.select(Call.record["call_timestamp"].as_string())))


def call_at(n: int) -> dict[str, Any]:
    return {**SEED_CALL, "call_timestamp": f"2022-02-02T00:00:00.{n + 1:06d}"}


def stamp(n: int) -> str:
    return f"2022-02-02T00:00:00.{n + 1:06d}Z"


@contextlib.contextmanager
def small_disk(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (needs root, as CI has)."""
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        message = f"cannot mount a small disk for the fault test: {result.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_full_disk_answers_503_and_recovers_by_itself(app_factory: Any, tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        url = f"sqlite:///{disk / 'rollcall.db'}"
        migrate(Database(url))
        app = app_factory(database_url=url)
        database = Database(url)
        map_seed_campaign(database)
        answers: dict[int, int] = {}
        with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
            for n in range(5):
                answers[n] = client.post(CONTRACT_PATH, json=call_at(n)).status_code
            filler = disk / "filler"
            # Unbuffered: a write the disk takes only in part leaves nothing for close() to flush.
            with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 65536)
            refused = None
            for n in range(5, 400):
                answer = client.post(CONTRACT_PATH, json={**call_at(n), "padding": "x" * 20000})
                answers[n] = answer.status_code
                if answer.status_code == 503:
                    refused = answer
                    break
            assert refused is not None, "the full disk never refused a call"
            assert refused.json() == UNAVAILABLE
            assert refused.headers["retry-after"]

            filler.unlink()  # the disk has room again: no restart, no command
            later = [client.post(CONTRACT_PATH, json=call_at(1000 + n)) for n in range(5)]
            assert [a.status_code for a in later] == [200] * 5
            answers.update({1000 + n: 200 for n in range(5)})
        acknowledged = {stamp(n) for n, status in answers.items() if status == 200}
        assert acknowledged <= stored_timestamps(database)
        wait_for(lambda: {c.state for c in calls_in(database)} == {"imported"}, timeout=30)
        database.dispose()


@SQLITE_ONLY
def test_locked_database_answers_503_then_recovers(app_factory: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollcall.db'}"
    migrate(Database(url))
    app = app_factory(database_url=url, sqlite_busy_timeout_ms=300)
    database = Database(url)
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        assert client.post(CONTRACT_PATH, json=call_at(0)).status_code == 200
        # Another program takes the write lock and keeps it.
        holder = sqlite3.connect(tmp_path / "rollcall.db", isolation_level=None, timeout=5)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            refused = client.post(CONTRACT_PATH, json=call_at(1))
            assert refused.status_code == 503
            assert refused.json() == UNAVAILABLE
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.post(CONTRACT_PATH, json=call_at(2)).status_code == 200
    assert stored_timestamps(database) == {stamp(0), stamp(2)}
    database.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_restart_mid_load_loses_no_acknowledged_call(database_url: str, app_factory: Any) -> None:
    cluster = shutil.which("pg_ctlcluster")
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not cluster or not versions:
        message = "pg_ctlcluster is not here: cannot restart PostgreSQL for this fault test"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    app: RunningApp = app_factory()
    database = Database(database_url)
    map_seed_campaign(database)
    answers: dict[int, int | str] = {}
    stop = threading.Event()
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def send() -> None:
        with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
            while not stop.is_set():
                with lock:
                    n = next(counter)
                try:
                    answers[n] = client.post(CONTRACT_PATH, json=call_at(n)).status_code
                except httpx.TransportError as error:
                    answers[n] = type(error).__name__
                time.sleep(0.01)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: sum(1 for a in answers.values() if a == 200) >= 50, timeout=30)
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart", "--", "-m", "fast"],
            check=True,
            capture_output=True,
        )
        # After the restart the intake stores calls again, by itself.
        before = len(answers)
        wait_for(
            lambda: sum(1 for n, a in list(answers.items()) if n > before + 20 and a == 200) >= 30,
            timeout=60,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)

    statuses = set(answers.values())
    assert statuses <= {200, 503}, statuses  # a failure is a clear 503, never a 500 or a lost 200
    acknowledged = {stamp(n) for n, status in answers.items() if status == 200}
    wait_for(lambda: acknowledged <= stored_timestamps(database), timeout=30)
    # And the importer resumed: every stored call becomes a post.
    wait_for(lambda: {c.state for c in calls_in(database)} == {"imported"}, timeout=60)
    database.dispose()


@contextlib.contextmanager
def ext4_disk(workdir: Path) -> Iterator[tuple[Path, Path, str]]:
    """An ext4 filesystem on a loop device, mounted at workdir/disk: (mount point, image, device)."""
    image, mount_point = workdir / "disk.img", workdir / "disk"
    mount_point.mkdir()
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    setup = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if setup.returncode != 0 or not shutil.which("mkfs.ext4"):
        message = f"no loop device for the read-only disk test: {setup.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    device = setup.stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True)
        subprocess.run(["mount", "-o", "errors=remount-ro", device, str(mount_point)], check=True)
        yield mount_point, image, device
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        subprocess.run(["losetup", "-d", device], check=False)


@SQLITE_ONLY
def test_read_only_disk_answers_503_and_acknowledges_nothing(app_factory: Any, tmp_path: Path) -> None:
    # Recovery is shown by the full-disk test. Here the filesystem cannot come back while the
    # service runs: ext4 turned read-only after an error must be unmounted and checked first.
    with ext4_disk(tmp_path) as (disk, _, device):
        url = f"sqlite:///{disk / 'rollcall.db'}"
        migrate(Database(url))
        app = app_factory(database_url=url)
        with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
            assert client.post(CONTRACT_PATH, json=call_at(0)).status_code == 200
            # The kernel finds an error and turns the filesystem read-only, as ext4 does.
            Path(f"/sys/fs/ext4/{Path(device).name}/trigger_fs_error").write_text("rollcall fault test\n")
            for n in range(1, 6):
                refused = client.post(CONTRACT_PATH, json=call_at(n))
                assert refused.status_code == 503
                assert refused.json() == UNAVAILABLE
            assert client.get("/healthz").status_code == 200
