"""The writer process of `rollcall serve`: the API processes' deliveries in, over a Unix socket;
decoded, validated and group-committed by one thread (`writer.GroupCommit`), answered once on
disk; imports in the gaps.

Why a process and not a thread: a thread shares the API process's interpreter lock, and waited
for it after every database call while the event loop ran requests. Why one thread in it (a
selector, no event loop, no queue): with an event loop validating in one thread and commits in
another, the two still took turns at the lock and every answer crossed between threads. The
figures are in docs/benchmarks.md ("How the ratio moved"). While a commit syncs, new frames wait
in the socket buffers, and the next read takes them all. The wire is `wire.py`; the API side is
`writer_client.py`.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from typing import Any

import structlog

from rollcall.calls import wire
from rollcall.calls.source import Delivery, Source
from rollcall.calls.writer import STOP, WAKE, GroupCommit, Handed
from rollcall.config import Settings
from rollcall.errors import RollcallError
from rollcall.processes import PARENT_CHECK, Child, Supervisor, name_this_process, orphaned

log = structlog.get_logger("rollcall.writer")

READ_SIZE = 256 * 1024


class WriterNotStarted(RollcallError):
    """The writer process did not come up (its own log says why)."""


class _Sender:
    """One API process's connection, as the writer process sees it: frames in, answers out."""

    __slots__ = ("sock", "frames", "outgoing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.frames = wire.Frames()
        self.outgoing = b""

    def receive(self) -> list[tuple[int, bytes]] | None:
        """The whole frames that came in (number, payload); None once the connection closed."""
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            return None
        if not data:
            return None
        return self.frames.feed(data)

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


def _answer(number: int, delivery: Delivery | None, failure: BaseException | None) -> bytes:
    if delivery is None or failure is not None:
        return wire.answer(number, None, None, repr(failure) if failure is not None else "not stored")
    return wire.answer(number, delivery.refusal, delivery.errors, None)


class SocketInbox:
    """The writer process's inbox: the API processes' connections on a Unix socket.

    One thread does everything (read frames, validate, commit, answer, import). Stops (says
    `STOP`) on SIGTERM from `rollcall serve` (after its API processes drained), or when `rollcall
    serve` is gone without a word (killed): a writer must not outlive the service it serves.
    """

    def __init__(self, path: str, parent: int, source: Source) -> None:
        self.parent = parent
        self.source = source
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
            if self.stopping or orphaned(self.parent):
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
            frames.setdefault(sender, []).append(_answer(number, delivery, error))
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
        frames = sender.receive()
        if frames is None:  # the API process went away; what it handed over is still stored
            self.selector.unregister(sender.sock)
            sender.sock.close()
            return
        for number, payload in frames:
            if number == wire.WAKE:
                items.append(WAKE)
                continue
            try:
                content_type, body = wire.read_request(payload)
                items.append((self.source.delivery(body, content_type), (sender, number)))
            except Exception as error:  # not the client's doing: answered 503, CallPower sends again
                log.exception("writer.delivery_failed")
                self._send(sender, _answer(number, None, error))

    def _send(self, sender: _Sender, data: bytes) -> None:
        if sender.sock.fileno() < 0:
            return
        if sender.send(data):  # the rest goes when the socket can take it
            self.selector.modify(sender.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, sender)

    def _flush(self, sender: _Sender) -> None:
        if not sender.send(b""):
            self.selector.modify(sender.sock, selectors.EVENT_READ, sender)


def run_writer_process(path: str, parent: int, make_source: Callable[[Settings], Source]) -> None:
    """The writer process's whole life (the target `rollcall serve` starts): the calls of the
    source `make_source` makes from the settings."""
    import gc

    from rollcall.calls.queue import Importer
    from rollcall.db import IMPORTER_PAGE_CACHE_MIB, Database
    from rollcall.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: `rollcall serve` drains first, then stops us
    name_this_process("rollcall-writer")
    configure_logging()
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.secrets())
    database = Database.for_settings(settings, page_cache_mib=IMPORTER_PAGE_CACHE_MIB)
    source = make_source(settings)
    inbox = SocketInbox(path, parent, source)
    signal.signal(signal.SIGTERM, lambda *_: inbox.stop_soon())
    gc.freeze()  # see app.py: full collections of long-lived objects stall the writer
    log.info("writer.started", pid=os.getpid())
    try:
        # Stores what it took before it stops, and finishes the call being imported.
        GroupCommit(database, source, Importer(database, settings, source)).run(inbox)
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
    """`rollcall serve`'s side: starts the writer process, starts it again if it dies (the
    intake answers 503 meanwhile, and CallPower sends again), stops it last."""

    NAME = "rollcall-writer"

    def __init__(self, make_source: Callable[[Settings], Source]) -> None:
        self.directory = tempfile.mkdtemp(prefix="rollcall-writer-")  # only this user may enter
        self.path = os.path.join(self.directory, "writer.sock")
        self._supervisor = Supervisor(
            [Child(self.NAME, run_writer_process, (self.path, os.getpid(), make_source))],
            on_exit=lambda name, exitcode: log.error("writer.exited", exitcode=exitcode),
        )

    def start(self, timeout: float = 120.0) -> None:
        """Start the writer process and wait until it listens; `WriterNotStarted` if it cannot."""
        self._supervisor.start()
        process = self._supervisor.process(self.NAME)
        assert process is not None
        deadline = time.monotonic() + timeout
        while not socket_is_ready(self.path):
            if not process.is_alive():
                raise WriterNotStarted(f"the writer process exited ({process.exitcode}); its log above says why")
            if time.monotonic() > deadline:
                process.kill()
                raise WriterNotStarted("the writer process did not start listening")
            time.sleep(0.05)
        self._supervisor.watch_in_background()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the writer stores what it was handed, finishes its import, and exits."""
        import shutil

        self._supervisor.stop(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)
