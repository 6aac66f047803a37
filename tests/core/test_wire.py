"""The wire between the API processes and the writer process: the frame codec both ends use."""

from __future__ import annotations

import json

from rollcall.calls import wire
from tests.helpers import SEED_CALL


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
