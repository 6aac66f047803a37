"""The writer process serving several API processes at once (what `rollcall serve --workers N`
runs). The wire's codec is tested in tests/core/test_wire.py."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
from pathlib import Path
from typing import Any

import pytest

from rollcall.callpower.source import CallPower
from rollcall.calls import wire
from rollcall.calls.source import Refusal
from rollcall.calls.writer_client import RemoteWriter
from rollcall.calls.writer_process import WriterProcess
from rollcall.db import Database
from tests.helpers import SEED_CALL, calls_in

# -- one writer process, several API processes ----------------------------------------------------


def _api_process(path: str, worker: int, count: int, results: Any) -> None:
    """One API process: `count` deliveries at once through its one connection to the writer."""

    async def deliver() -> list[Any]:
        writer = RemoteWriter(path)
        bodies = []
        for n in range(count):
            call = {**SEED_CALL, "call_timestamp": f"2024-05-0{1 + worker}T00:00:00.{n + 1:06d}"}
            if n % 10 == 0:
                call.pop("mobile")  # every tenth is refused, and kept
            bodies.append(json.dumps(call).encode() if n % 25 else b"{not json")
        receipts = await asyncio.gather(*(writer.receive(body, "application/json") for body in bodies))
        writer.stop()
        return [(str(refusal) if refusal else None, errors) for refusal, errors in receipts]

    results.put((worker, asyncio.run(deliver())))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_one_writer_process_serves_several_api_processes_at_once(
    database_url: str, database: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    writer = WriterProcess(CallPower.of)
    writer.start()
    try:
        # A client that sends half a frame and hangs up must not disturb the others.
        with socket.socket(socket.AF_UNIX) as broken:
            broken.connect(writer.path)
            broken.sendall(wire.request(1, "application/json", b"{" * 500)[:100])
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [context.Process(target=_api_process, args=(writer.path, w, 100, results)) for w in range(4)]
        for process in workers:
            process.start()
        answers = dict(results.get(timeout=120) for _ in workers)
        for process in workers:
            process.join(30)
            assert process.exitcode == 0
    finally:
        writer.stop()
    for worker in range(4):
        refusals = [refusal for refusal, _ in answers[worker]]
        assert refusals.count(str(Refusal.UNREADABLE)) == 4  # every 25th: not JSON
        assert refusals.count(str(Refusal.INVALID)) == 8  # every tenth lacks its mobile (two of them are not JSON)
        assert refusals.count(None) == 88
        assert answers[worker][10][1] == {"mobile": ["The mobile field is required."]}
    stored = calls_in(database)
    assert len(stored) == 400  # every delivery answered is stored, the refused ones as rejected
    assert len([call for call in stored if call.state != "rejected"]) == 4 * 88
