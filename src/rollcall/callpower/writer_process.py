"""The writer process of `rollcall serve`, and the API processes' side of it.

`rollcall serve` starts one writer process beside its API process(es). The writer process runs
the group-commit writer (`CallWriter`: one transaction and one sync to disk for every call that
queued up meanwhile, imports in the gaps) and listens on a Unix socket that only this user can
open. An API process validates a call, sends the delivery over the socket, and answers 200 when
the writer process says the call is on disk.

Why a process and not a thread: a thread shares the API process's interpreter lock. Measured on
a 2-core machine, the writer thread waited for that lock after every database call while the
event loop ran requests, so a commit of 25 calls took 14 ms instead of 3 ms, and the storing
cost the API process more CPU than answering. In a process of its own, SQLite's work and the
importer run on the other core, and the API process only validates and answers.

The writer process also decodes and validates the body (`body.delivery_of`, the one validator),
so the API processes only authenticate, forward and answer: the work per call is split about
evenly between the two cores.

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
import functools
import itertools
import os
import signal
import struct
import threading
import time
from typing import Any

import orjson
import structlog

from rollcall.callpower.body import delivery_of
from rollcall.callpower.service import Delivery
from rollcall.callpower.writer import CallWriter, WriterStopped
from rollcall.errors import RollcallError

log = structlog.get_logger("rollcall.writer")

REQUEST = struct.Struct("!IQH")
ANSWER = struct.Struct("!I")
WAKE = 0


Receipt = tuple[int, dict[str, list[str]] | None]


class WriterNotStarted(RollcallError):
    """The writer process did not come up (its own log says why)."""


class WriterFailed(Exception):
    """The writer process could not store the delivery (its error's text)."""


# -- the API process's side ---------------------------------------------------------------------


class RemoteWriter:
    """Hands deliveries to the writer process and waits for its word; same face as `CallWriter`.

    One connection per API process, opened on first use and again after it was lost.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._stream: asyncio.StreamWriter | None = None
        self._opening: asyncio.Future[asyncio.StreamWriter] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, asyncio.Future[Receipt]] = {}
        self._numbers = itertools.count(1)
        self._reader_task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        pass  # connects on first use

    def stop(self) -> None:
        self._stopped = True
        if self._stream is not None:
            self._stream.close()
        self._stream = None

    async def receive(self, body: bytes, content_type: str | None) -> Receipt:
        stream = self._stream or await self._connect()
        number = next(self._numbers)
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        kind = (content_type or "").encode("latin-1")[:1024]
        stream.write(REQUEST.pack(len(body), number, len(kind)) + kind + body)
        return await future

    def wake_importer(self) -> None:
        """Calls were released (mapping, retry): ask the writer process's importer to look now.

        Safe from any thread; without a connection it does nothing (the importer looks again
        within ROLLCALL_IMPORT_POLL_SECONDS anyway)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._send_wake)

    def _send_wake(self) -> None:
        if self._stream is not None and not self._stream.is_closing():
            self._stream.write(REQUEST.pack(0, WAKE, 0))

    async def _connect(self) -> asyncio.StreamWriter:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        try:
            return await asyncio.shield(self._opening)
        except Exception as error:
            self._opening = None
            raise WriterStopped() from error

    async def _open(self) -> asyncio.StreamWriter:
        reader, stream = await asyncio.open_unix_connection(self.path)
        self._loop = asyncio.get_running_loop()
        self._stream = stream
        self._reader_task = asyncio.create_task(self._read_answers(reader))
        return stream

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        pending = self._pending
        try:
            while True:
                (size,) = ANSWER.unpack(await reader.readexactly(ANSWER.size))
                number, status, errors, failure = orjson.loads(await reader.readexactly(size))
                future = pending.pop(number, None)
                if future is None or future.done():
                    continue
                if failure is None:
                    future.set_result((status, errors))
                else:
                    future.set_exception(WriterFailed(failure))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            if not self._stopped:
                log.error("writer.connection_lost", waiting=len(pending))
        finally:
            if self._stream is not None:
                self._stream.close()
            self._stream = None
            self._opening = None
            for future in pending.values():
                if not future.done():
                    future.set_exception(WriterStopped())
            pending.clear()


# -- the writer process -------------------------------------------------------------------------


def _answer(
    stream: asyncio.StreamWriter, number: int, delivery: Delivery | None, failure: BaseException | None
) -> None:
    if not stream.is_closing():
        status, errors = (delivery.status, delivery.errors) if delivery is not None else (503, None)
        payload = orjson.dumps([number, status, errors, None if failure is None else repr(failure)])
        stream.write(ANSWER.pack(len(payload)) + payload)


async def _serve_connection(writer: CallWriter, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            size, number, kind_size = REQUEST.unpack(await reader.readexactly(REQUEST.size))
            if number == WAKE:
                writer.wake_importer()
                continue
            content_type = (await reader.readexactly(kind_size)).decode("latin-1") if kind_size else None
            body = await reader.readexactly(size) if size else b""
            delivery = None
            try:
                delivery = await delivery_of(body, content_type, writer.region)
                writer.submit(delivery, loop, functools.partial(_answer, stream, number, delivery))
            except Exception as error:  # the writer is stopping
                _answer(stream, number, delivery, error)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # the API process went away; what it handed over is still stored
    finally:
        stream.close()


async def _serve(writer: CallWriter, path: str, parent: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = await asyncio.start_unix_server(functools.partial(_serve_connection, writer), path=path)
    os.chmod(path, 0o600)
    log.info("writer.started", pid=os.getpid())
    # Ends on SIGTERM from `rollcall serve` (after its API processes drained), or when `rollcall
    # serve` is gone without a word (killed): a writer must not outlive the service it serves.
    while not stop.is_set() and os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
    server.close()


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
    writer = CallWriter(database, Importer(database, settings), region=settings.default_region)
    writer.start()
    gc.freeze()  # see app.py: full collections of long-lived objects stall the writer
    try:
        asyncio.run(_serve(writer, path, parent))
    finally:
        writer.stop()  # stores what was handed over, finishes the call being imported
        database.dispose()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def socket_is_ready(path: str) -> bool:
    import socket

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
