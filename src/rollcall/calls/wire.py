"""The wire between an API process and the writer process: one frame layout both ways.

A frame is `!IQ` (the payload's length, the request's number) and the payload. A request's
payload is the content type's length (`!H`), the content type and the body; request number 0
with an empty payload asks the writer's importer to look for work now. An answer's payload is
JSON: `[refusal or null, errors or null, null or the error that kept it from being stored]`.
`Frames` splits frames out of whatever the socket gave, on either end.
"""

from __future__ import annotations

import struct

import orjson

HEADER = struct.Struct("!IQ")
_CONTENT_TYPE = struct.Struct("!H")
WAKE = 0  # the request number of "import now"
MAX_CONTENT_TYPE = 1024


def frame(number: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), number) + payload


def request(number: int, content_type: str | None, body: bytes) -> bytes:
    kind = (content_type or "").encode("latin-1", errors="replace")[:MAX_CONTENT_TYPE]
    return frame(number, _CONTENT_TYPE.pack(len(kind)) + kind + body)


def wake() -> bytes:
    return frame(WAKE, b"")


def read_request(payload: bytes) -> tuple[str | None, bytes]:
    """(content type, body) of a request's payload."""
    (size,) = _CONTENT_TYPE.unpack_from(payload)
    start = _CONTENT_TYPE.size
    content_type = payload[start : start + size].decode("latin-1") if size else None
    return content_type, payload[start + size :]


def answer(number: int, refusal: str | None, errors: dict[str, list[str]] | None, failure: str | None) -> bytes:
    return frame(number, orjson.dumps([refusal, errors, failure]))


def read_answer(payload: bytes) -> tuple[str | None, dict[str, list[str]] | None, str | None]:
    refusal, errors, failure = orjson.loads(payload)
    return refusal, errors, failure


class Frames:
    """Whole frames out of a byte stream: bytes that end in the middle of a frame wait for the rest."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """(number, payload) of each frame completed by `data`, in order."""
        buffer = self._pending + data if self._pending else data
        frames: list[tuple[int, bytes]] = []
        offset, end = 0, len(buffer)
        unpack, header = HEADER.unpack_from, HEADER.size
        while end - offset >= header:
            size, number = unpack(buffer, offset)
            stop = offset + header + size
            if stop > end:
                break
            frames.append((number, buffer[offset + header : stop]))
            offset = stop
        self._pending = buffer[offset:]
        return frames

    @property
    def waiting(self) -> int:
        """Bytes of a frame not yet whole."""
        return len(self._pending)
