"""Child processes: started (spawned), started again when one dies, stopped together; and the
watch a child keeps on its parent, so that nothing outlives the command that started it.

`rollcall worker --concurrency N` supervises its importers with `Supervisor`, `rollcall serve`
its writer process (and its deliverer); each child notices with `orphaned` when its parent was
killed without a word, and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

log = structlog.get_logger("rollcall.processes")

PARENT_CHECK = 0.5  # seconds between looks at whether the parent is still there


def name_this_process(name: str) -> None:
    """Give this process a name `ps` and `top` show (Linux, at most 15 characters), so that a
    spawned writer, deliverer or importer is told apart from its siblings."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name[:15])


def orphaned(parent: int) -> bool:
    """True once the process that started this one is gone (this one was handed to init)."""
    return os.getppid() != parent


async def stop_when_orphaned(parent: int) -> None:
    """In an event loop: once the parent is gone, stop this process as SIGTERM does (drained)."""
    while not orphaned(parent):
        await asyncio.sleep(PARENT_CHECK)
    log.error("parent.gone", pid=os.getpid(), parent=parent)
    os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(parent: int, stopping: threading.Event) -> None:
    """In a thread: once the parent is gone, set `stopping` (the child then stops as on SIGTERM)."""

    def watch() -> None:
        while not stopping.wait(PARENT_CHECK):
            if orphaned(parent):
                log.error("parent.gone", pid=os.getpid(), parent=parent)
                stopping.set()

    threading.Thread(target=watch, name="rollcall-parent-watch", daemon=True).start()


def _run_child(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    """A child's life: its logging set up before anything else (the target sets it again from its
    settings), and whatever it raises logged through it, never printed raw by multiprocessing."""
    from rollcall.logs import configure_logging

    configure_logging()
    try:
        target(*args)
    except Exception:
        log.exception("child.crashed")
        raise SystemExit(1) from None


@dataclass(frozen=True)
class Child:
    name: str
    target: Callable[..., None]
    args: tuple[Any, ...] = ()


class Supervisor:
    """Keeps children running: one that dies is started again (after `restart_pause`), until
    `stop`. A child's exit is reported to `on_exit(name, exitcode)`.

    Safe against a stop that comes while children are being started: none is started after it,
    and every started one is told (again) when `stop` runs.
    """

    def __init__(
        self,
        children: Sequence[Child],
        *,
        restart_pause: float = 0.5,
        on_exit: Callable[[str, int], None] | None = None,
    ) -> None:
        self._children = list(children)
        self._processes: dict[str, BaseProcess] = {}
        self._context = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        self._restart_pause = restart_pause
        self._on_exit = on_exit
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        for child in self._children:
            if self._stopping.is_set():
                return
            self._spawn(child)

    def process(self, name: str) -> BaseProcess | None:
        return self._processes.get(name)

    def watch(self) -> None:
        """Until stopped: start again each child that died."""
        while not self._stopping.wait(PARENT_CHECK):
            for child in self._children:
                process = self._processes.get(child.name)
                if process is None or process.exitcode is None or self._stopping.is_set():
                    continue
                if self._on_exit is not None:
                    self._on_exit(child.name, process.exitcode)
                if self._stopping.wait(self._restart_pause):
                    return
                self._spawn(child)

    def watch_in_background(self) -> None:
        self._watcher = threading.Thread(target=self.watch, name="rollcall-supervisor", daemon=True)
        self._watcher.start()

    def request_stop(self) -> None:
        """Tell every running child to stop (SIGTERM); safe from a signal handler."""
        self._stopping.set()
        for process in list(self._processes.values()):
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> list[tuple[str, int | None]]:
        """SIGTERM to every child, wait for each (`timeout`), kill those still there. Returns the
        (name, exit code) of each that did not stop cleanly. A death by our SIGTERM counts as
        clean: it came before the child listened for it, so it held nothing."""
        self.request_stop()  # again: a child may have started since
        if self._watcher is not None:
            self._watcher.join(timeout)
        deadline = time.monotonic() + timeout
        failed: list[tuple[str, int | None]] = []
        for name, process in self._processes.items():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join()
                failed.append((name, None))
            elif process.exitcode not in (0, -signal.SIGTERM):
                failed.append((name, process.exitcode))
        return failed

    def _spawn(self, child: Child) -> None:
        process = self._context.Process(target=_run_child, args=(child.target, child.args), name=child.name)
        process.start()
        self._processes[child.name] = process
