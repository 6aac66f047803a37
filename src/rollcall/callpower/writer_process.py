"""The writer process of `rollcall serve`, and the API processes' side of it.

`rollcall serve` starts one writer process beside its API process(es). An API process
authenticates a delivery, sends its body over a Unix socket that only this user can open, and
answers with what the writer process says once the call is on disk. The writer process decodes
and validates the body (`body.delivery_of`, the one validator) and runs the group-commit loop
(`writer.GroupCommit`: one transaction and one sync to disk for every call that came in
meanwhile, imports in the gaps).

Why a process and not a thread: a thread shares the API process's interpreter lock. Measured on
a 2-core machine, the writer thread waited for that lock after every database call while the
event loop ran requests, so a commit of 25 calls took 14 ms instead of 3 ms. In a process of its
own, SQLite's work and the importer run on the other core.

Why one thread in the writer process (`SocketInbox`: a selector, no event loop, no queue): with
an event loop validating in one thread and the commits in another, the two still took turns at
the interpreter lock, and every answer crossed between threads. A commit of ~20 calls took
2.0 ms in the server against 1.2 ms alone. In one thread the commit takes 1.4 ms, each batch's
answers leave in one write per API process, and the intake's throughput rose by a tenth. While
a commit syncs, new frames wait in the socket buffers, and the next read takes them all.

The wire: each request frame is `!IQH` (body length, request number, content type length), the
content type and the body; request number 0 with nothing else asks the importer to look for
work now. Each answer frame is `!I` and JSON `[request number, status, errors, null or the
error that kept it from being stored]`. A delivery whose connection drops before its answer is
answered 503 by the API (CallPower sends it again; if it was stored meanwhile, the repeat is
recognised and stored once).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import selectors
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from rollcall.callpower.body import delivery_of
from rollcall.callpower.service import Delivery
from rollcall.callpower.writer import STOP, WAKE, GroupCommit, Handed, WriterStopped
from rollcall.errors import RollcallError

log = structlog.get_logger("rollcall.writer")

REQUEST = struct.Struct("!IQH")
ANSWER = struct.Struct("!I")
WAKE_NUMBER = 0
READ_SIZE = 256 * 1024
PARENT_CHECK = 0.5  # seconds between looks at whether `rollcall serve` is still there


Receipt = tuple[int, dict[str, list[str]] | None]


class WriterNotStarted(RollcallError):
    """The writer process did not come up (its own log says why)."""


class WriterFailed(Exception):
    """The writer process could not store the delivery (its error's text)."""


# -- the API process's side ---------------------------------------------------------------------


class RemoteWriter:
    """Hands deliveries to the writer process and waits for its word; same face as `CallWriter`.

    One connection per API process, opened on first use and again after it was lost. The
    frames of all requests that come in one turn of the event loop leave in one write.
    """

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
        kind = (content_type or "").encode("latin-1")[:1024]
        return await connection.send(number, REQUEST.pack(len(body), number, len(kind)) + kind + body)

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
            self._connection.write(REQUEST.pack(0, WAKE_NUMBER, 0))

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
        self._incoming = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

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
        buffer = self._incoming + data if self._incoming else data
        pending = self._pending
        offset, end = 0, len(buffer)
        while end - offset >= ANSWER.size:
            (size,) = ANSWER.unpack_from(buffer, offset)
            stop = offset + ANSWER.size + size
            if stop > end:
                break
            number, status, errors, failure = orjson.loads(buffer[offset + ANSWER.size : stop])
            offset = stop
            future = pending.pop(number, None)
            if future is None or future.done():
                continue
            if failure is None:
                future.set_result((status, errors))
            else:
                future.set_exception(WriterFailed(failure))
        self._incoming = buffer[offset:]

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


# -- the writer process -------------------------------------------------------------------------


class _Sender:
    """One API process's connection, as the writer process sees it: frames in, answers out."""

    __slots__ = ("sock", "incoming", "outgoing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.incoming = b""
        self.outgoing = b""

    def frames(self) -> list[tuple[int, str | None, bytes]] | None:
        """The whole frames that came in (request number, content type, body); None once closed."""
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        buffer = self.incoming + data if self.incoming else data
        frames = []
        offset, end = 0, len(buffer)
        while end - offset >= REQUEST.size:
            size, number, kind_size = REQUEST.unpack_from(buffer, offset)
            start = offset + REQUEST.size
            stop = start + kind_size + size
            if stop > end:
                break
            content_type = buffer[start : start + kind_size].decode("latin-1") if kind_size else None
            frames.append((number, content_type, buffer[start + kind_size : stop]))
            offset = stop
        self.incoming = buffer[offset:]
        return frames

    def send(self, data: bytes) -> bool:
        """Send what can be sent now; True if something is left for later."""
        self.outgoing += data
        try:
            sent = self.sock.send(self.outgoing)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the API process went away; its deliveries are stored all the same
            self.outgoing = b""
            return False
        self.outgoing = self.outgoing[sent:]
        return bool(self.outgoing)


def _answer_frame(number: int, delivery: Delivery | None, failure: BaseException | None) -> bytes:
    status, errors = (delivery.status, delivery.errors) if delivery is not None else (503, None)
    payload = orjson.dumps([number, status, errors, None if failure is None else repr(failure)])
    return ANSWER.pack(len(payload)) + payload


class SocketInbox:
    """The writer process's inbox: the API processes' connections on a Unix socket.

    One thread does everything (read frames, validate, commit, answer, import), so nothing in
    this process waits for the interpreter lock or for a hand-over between threads. While a
    commit syncs, new frames wait in the socket buffers; the next `take` reads them all.

    Stops (says `STOP`) on SIGTERM from `rollcall serve` (after its API processes drained), or
    when `rollcall serve` is gone without a word (killed): a writer must not outlive the service
    it serves.
    """

    def __init__(self, path: str, parent: int, region: str) -> None:
        self.parent = parent
        self.region = region
        self.selector = selectors.DefaultSelector()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)  # in a directory only this user may enter
        os.chmod(path, 0o600)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self._signals, self._signalled = socket.socketpair()
        self._signals.setblocking(False)
        self._signalled.setblocking(False)
        self.selector.register(self._signals, selectors.EVENT_READ, self._signals)
        self.stopping = False

    def stop_soon(self) -> None:
        """Safe from a signal handler: the next `take` says STOP."""
        self.stopping = True
        with contextlib.suppress(OSError):
            self._signalled.send(b"x")

    def take(self, timeout: float | None) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.stopping or os.getppid() != self.parent:
                return [*self._receive(0), STOP]  # what was sent already is stored and answered
            wait = PARENT_CHECK if deadline is None else max(0.0, min(PARENT_CHECK, deadline - time.monotonic()))
            items = self._receive(wait)
            if items or (deadline is not None and time.monotonic() >= deadline):
                return items

    def _receive(self, wait: float) -> list[Any]:
        items: list[Any] = []
        for key, mask in self.selector.select(wait):
            if key.data is None:
                self._accept()
            elif key.data is self._signals:
                with contextlib.suppress(OSError):
                    self._signals.recv(64)
            else:
                if mask & selectors.EVENT_WRITE:
                    self._flush(key.data)
                if mask & selectors.EVENT_READ:
                    self._read(key.data, items)
        return items

    def answer(self, handed: list[Handed], error: BaseException | None) -> None:
        # One send per API process for the whole batch.
        frames: dict[_Sender, list[bytes]] = {}
        for delivery, (sender, number) in handed:
            frames.setdefault(sender, []).append(_answer_frame(number, delivery, error))
        for sender, answers in frames.items():
            self._send(sender, b"".join(answers))

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._signalled.close()
        self.selector.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, _Sender(sock))

    def _read(self, sender: _Sender, items: list[Any]) -> None:
        frames = sender.frames()
        if frames is None:  # the API process went away; what it handed over is still stored
            self.selector.unregister(sender.sock)
            sender.sock.close()
            return
        for number, content_type, body in frames:
            if number == WAKE_NUMBER:
                items.append(WAKE)
                continue
            try:
                items.append((delivery_of(body, content_type, self.region), (sender, number)))
            except Exception as error:  # not the client's doing: answered 503, CallPower sends again
                log.exception("writer.delivery_failed")
                self._send(sender, _answer_frame(number, None, error))

    def _send(self, sender: _Sender, data: bytes) -> None:
        if sender.sock.fileno() < 0:
            return
        if sender.send(data):  # the rest goes when the socket can take it
            self.selector.modify(sender.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, sender)

    def _flush(self, sender: _Sender) -> None:
        if not sender.send(b""):
            self.selector.modify(sender.sock, selectors.EVENT_READ, sender)


def run_writer_process(path: str, parent: int) -> None:
    """The writer process's whole life (the target `rollcall serve` starts)."""
    import gc

    from rollcall.config import Settings
    from rollcall.db import Database
    from rollcall.logs import configure_logging
    from rollcall.worker import Importer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: `rollcall serve` drains first, then stops us
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    database = Database.for_settings(settings)
    inbox = SocketInbox(path, parent, settings.default_region)
    signal.signal(signal.SIGTERM, lambda *_: inbox.stop_soon())
    gc.freeze()  # see app.py: full collections of long-lived objects stall the writer
    log.info("writer.started", pid=os.getpid())
    try:
        # Stores what it took before it stops, and finishes the call being imported.
        GroupCommit(database, Importer(database, settings)).run(inbox)
    finally:
        inbox.close()
        database.dispose()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def socket_is_ready(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


class WriterProcess:
    """`rollcall serve`'s side: starts the writer process, starts it again if it dies, stops it last."""

    def __init__(self) -> None:
        import multiprocessing
        import tempfile

        self.directory = tempfile.mkdtemp(prefix="rollcall-writer-")  # only this user may enter
        self.path = os.path.join(self.directory, "writer.sock")
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 120.0) -> None:
        """Start the writer process and wait until it listens; `WriterNotStarted` if it cannot."""
        self._spawn()
        deadline = time.monotonic() + timeout
        while not socket_is_ready(self.path):
            if not self._process.is_alive():
                raise WriterNotStarted(f"the writer process exited ({self._process.exitcode}); its log above says why")
            if time.monotonic() > deadline:
                self._process.kill()
                raise WriterNotStarted("the writer process did not start listening")
            time.sleep(0.05)
        self._thread = threading.Thread(target=self._supervise, name="rollcall-writer-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the writer stores what it was handed, finishes its import, and exits."""
        import shutil

        self._stopping = True
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(timeout)
            if process.is_alive():
                process.kill()
                process.join()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=run_writer_process, args=(self.path, os.getpid()), name="rollcall-writer"
        )
        self._process.start()

    def _supervise(self) -> None:
        # A writer that died (killed, out of memory) is started again; meanwhile the intake
        # answers 503 and CallPower sends again. Acknowledged calls were on disk already.
        while not self._stopping:
            self._process.join(0.5)
            if self._process.exitcode is not None and not self._stopping:
                log.error("writer.exited", exitcode=self._process.exitcode)
                time.sleep(0.5)
                if not self._stopping:
                    self._spawn()
