"""The API process's side of the writer process: hand a body over the socket, wait for its word.

One connection per API process, opened on first use and again after it was lost. The frames of
all requests that come in one turn of the event loop leave in one write. A delivery whose
connection drops before its answer is answered 503 by the intake (CallPower sends it again; if
it was stored meanwhile, the repeat is recognised and stored once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import cast

import structlog

from rollcall.calls import wire
from rollcall.calls.source import Refusal
from rollcall.calls.writer import Receipt, WriterStopped

log = structlog.get_logger("rollcall.writer")


class WriterFailed(Exception):
    """The writer process could not store the delivery (its error's text)."""


class RemoteWriter:
    """Hands deliveries to the writer process and waits for its word; the face of `CallWriter`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: _WriterConnection | None = None
        self._opening: asyncio.Future[_WriterConnection] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._numbers = itertools.count(1)
        self._stopped = False

    def start(self) -> None:
        pass  # connects on first use

    def stop(self) -> None:
        self._stopped = True
        if self._connection is not None:
            self._connection.close()
        self._connection = None

    async def receive(self, body: bytes, content_type: str | None) -> Receipt:
        connection = self._connection or await self._connect()
        number = next(self._numbers)
        return await connection.send(number, wire.request(number, content_type, body))

    def wake_importer(self) -> None:
        """Calls were released (mapping, retry): ask the writer process's importer to look now.

        Safe from any thread; without a connection it does nothing (the importer looks again
        within ROLLCALL_IMPORT_POLL_SECONDS anyway)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._send_wake)

    def _send_wake(self) -> None:
        if self._connection is not None:
            self._connection.write(wire.wake())

    async def _connect(self) -> _WriterConnection:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._opening)
        except Exception as error:
            self._opening = None
            raise WriterStopped() from error

    async def _open(self) -> _WriterConnection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_unix_connection(lambda: _WriterConnection(self._lost), self.path)
        self._loop = loop
        self._connection = connection
        return connection

    def _lost(self, connection: _WriterConnection, waiting: int) -> None:
        if not self._stopped:
            log.error("writer.connection_lost", waiting=waiting)
        if self._connection is connection:
            self._connection = None
            self._opening = None


class _WriterConnection(asyncio.Protocol):
    """The API process's connection to the writer process: request frames out, answers in."""

    def __init__(self, lost: Callable[[_WriterConnection, int], None]) -> None:
        self._lost = lost
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[Receipt]] = {}
        self._outgoing: list[bytes] = []
        self._frames = wire.Frames()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's, but have the same face.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, number: int, frame: bytes) -> asyncio.Future[Receipt]:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        if self._transport is None:  # lost while the request was on its way here
            future.set_exception(WriterStopped())
            return future
        self._pending[number] = future
        self.write(frame)
        return future

    def write(self, frame: bytes) -> None:
        if self._transport is None:
            return
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(frame)

    def _flush(self) -> None:
        frames, self._outgoing = self._outgoing, []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(frames))

    def data_received(self, data: bytes) -> None:
        pending = self._pending
        for number, payload in self._frames.feed(data):
            future = pending.pop(number, None)
            if future is None or future.done():
                continue
            refusal, errors, failure = wire.read_answer(payload)
            if failure is None:
                future.set_result((Refusal(refusal) if refusal else None, errors))
            else:
                future.set_exception(WriterFailed(failure))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        pending, self._pending = self._pending, {}
        self._lost(self, len(pending))
        for future in pending.values():
            if not future.done():
                future.set_exception(WriterStopped())

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
