"""Progress of long work (`backup`, `restore`, `backups verify`, `calls import`, `stats rebuild`):
a bar with its rate and an estimate on a terminal (rich, as typer uses), and on anything else (a
log, a pipe, CI) a plain line per step and every few seconds, on stderr either way."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import typer

from rollcall.progress import Progress

PLAIN_EVERY = 5.0  # seconds between plain lines of one step
UNITS = {"copy": "bytes", "dump": "bytes", "checksum": "bytes", "restore": "bytes", "lines": "lines", "posts": "posts"}


@contextlib.contextmanager
def progress_of(what: str) -> Iterator[Progress]:
    """A `Progress` for the work `what`: steps, each with how much is done of how much."""
    if sys.stderr.isatty():
        with _bars(what) as report:
            yield report
        return
    yield _plain(what)


def _plain(what: str) -> Progress:
    said: dict[str, float] = {}

    def report(step: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if step in said and now - said[step] < PLAIN_EVERY and not finished:
            return
        if finished and said.get(step) == -1:
            return
        said[step] = -1 if finished else now
        share = f" ({100 * done / total:.0f}%)" if total else ""
        of = f" of {total:,}" if total is not None else ""
        typer.echo(f"{what}: {step} {done:,}{of} {UNITS.get(step, '')}{share}".rstrip(), err=True)

    return report


@contextlib.contextmanager
def _bars(what: str) -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as Bars

    tasks: dict[str, TaskID] = {}
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn()]
    with Bars(*columns, TextColumn("{task.fields[amount]}"), console=Console(stderr=True), transient=False) as bars:

        def report(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(f"{what}: {step}", total=total, amount="")
            counted = UNITS.get(step) == "bytes"
            column = DownloadColumn() if counted else MofNCompleteColumn()
            speed = TransferSpeedColumn() if counted else None
            task = bars.tasks[tasks[step]]
            amount = column.render(task).plain + (f"  {speed.render(task).plain}" if speed else "")
            bars.update(tasks[step], completed=done, total=total, amount=amount)

        yield report
