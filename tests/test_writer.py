"""The production path's wire and writer process: the frame codec both ends use, and one writer
process serving several API processes at once (what `rollcall serve --workers N` runs)."""

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
from rollcall.calls.deliveries import Refusal
from rollcall.calls.writer_client import RemoteWriter
from rollcall.calls.writer_process import WriterProcess
from rollcall.db import Database
from tests.helpers import SEED_CALL, calls_in

# -- the codec ------------------------------------------------------------------------------------


def test_a_request_frame_reads_back_whole() -> None:
    body = json.dumps(SEED_CALL).encode()
    [(number, payload)] = wire.Frames().feed(wire.request(7, "application/json; charset=utf-8", body))
    assert number == 7
    assert wire.read_request(payload) == ("application/json; charset=utf-8", body)
    [(_, empty)] = wire.Frames().feed(wire.request(8, None, b""))
    assert wire.read_request(empty) == (None, b"")


def test_an_answer_frame_reads_back_whole() -> None:
    frames = wire.Frames().feed(
        wire.answer(3, "invalid", {"mobile": ["The mobile field is required."]}, None) + wire.answer(4, None, None, "x")
    )
    assert [(n, wire.read_answer(p)) for n, p in frames] == [
        (3, ("invalid", {"mobile": ["The mobile field is required."]}, None)),
        (4, (None, None, "x")),
    ]


def test_frames_split_across_reads_are_put_back_together() -> None:
    stream = b"".join(wire.request(n, "application/json", b"x" * n * 100) for n in range(1, 6)) + wire.wake()
    frames = wire.Frames()
    got = []
    for byte in range(len(stream)):  # one byte per read, the worst a socket can do
        got.extend(frames.feed(stream[byte : byte + 1]))
    assert [number for number, _ in got] == [1, 2, 3, 4, 5, wire.WAKE]
    assert [wire.read_request(payload)[1] for _, payload in got[:5]] == [b"x" * n * 100 for n in range(1, 6)]
    assert frames.waiting == 0


def test_several_frames_in_one_read_and_a_truncated_one_waits() -> None:
    whole = wire.request(1, None, b"a") + wire.request(2, None, b"bb")
    truncated = wire.request(3, None, b"ccc")[:-2]
    frames = wire.Frames()
    assert [number for number, _ in frames.feed(whole + truncated)] == [1, 2]
    assert frames.waiting == len(truncated)  # nothing is made of a frame that has not all come
    assert frames.feed(b"") == []
    [(number, payload)] = frames.feed(wire.request(3, None, b"ccc")[-2:])
    assert (number, wire.read_request(payload)) == (3, (None, b"ccc"))


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
