"""Backups on a schedule: a process of `rollcall serve` (one, whatever `--workers` says) that
takes a backup into `ROLLCALL_BACKUP_DIR` every `ROLLCALL_BACKUP_INTERVAL`, keeps the newest
`ROLLCALL_BACKUP_KEEP`, and logs and counts each outcome. The first is due one interval after the
newest backup already there (at once if there is none), so a restarted service neither skips
one nor takes one on every start. A failed backup is tried again after a tenth of the interval.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import threading
import time

import structlog

from rollcall.backups import snapshots
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.logs import configure_logging
from rollcall.metrics import BACKUP_FAILURES, BACKUP_SECONDS
from rollcall.processes import name_this_process, watch_parent
from rollcall.times import utcnow

log = structlog.get_logger("rollcall.backups")
NICENESS = 10


@dataclasses.dataclass(frozen=True)
class Status:
    """What the console's overview says of backups: whether a backup directory is set, how often
    `rollcall serve` takes one (None: not on a schedule), and when the newest was taken."""

    configured: bool
    interval: float | None
    last: dt.datetime | None

    @property
    def age(self) -> float | None:
        return (utcnow() - self.last).total_seconds() if self.last else None

    @property
    def overdue(self) -> bool:
        """No backup, or the newest older than two intervals."""
        if self.interval is None:
            return False
        return self.age is None or self.age > 2 * self.interval


def status(settings: Settings) -> Status:
    if not settings.backup_dir:
        return Status(False, settings.backup_interval, None)
    newest = snapshots.newest_backup(settings.backup_dir)
    return Status(True, settings.backup_interval, newest.created if newest else None)


def first_due(settings: Settings) -> float:
    """Seconds until the first scheduled backup."""
    assert settings.backup_dir and settings.backup_interval
    newest = snapshots.newest_backup(settings.backup_dir)
    if newest is None or newest.created is None:
        return 0.0
    return max(0.0, settings.backup_interval - (utcnow() - newest.created).total_seconds())


def take_once(database: Database, settings: Settings) -> bool:
    """One scheduled backup, logged and counted; True if it was taken."""
    assert settings.backup_dir
    started = time.monotonic()
    try:
        path, manifest = snapshots.take(database, settings.backup_dir, keep=settings.backup_keep)
    except snapshots.BackupFailed as error:
        BACKUP_FAILURES.labels(error.reason).inc()
        log.error("backup.failed", reason=error.reason, detail=str(error))
        return False
    except Exception as error:  # noqa: BLE001 (the schedule goes on; the failure is logged and counted)
        BACKUP_FAILURES.labels("error").inc()
        log.error("backup.failed", reason="error", detail=f"{type(error).__name__}: {error}")
        return False
    seconds = time.monotonic() - started
    BACKUP_SECONDS.observe(seconds)
    log.info("backup.taken", file=path.name, bytes=manifest.size, seconds=round(seconds, 2))
    return True


def run(settings: Settings, stopping: threading.Event) -> None:
    """Take backups on the schedule until `stopping` is set."""
    assert settings.backup_interval
    database = Database.for_settings(settings)
    wait = first_due(settings)
    try:
        while not stopping.wait(wait):
            wait = settings.backup_interval if take_once(database, settings) else settings.backup_interval / 10
    finally:
        database.dispose()


def run_schedule_process(parent: int) -> None:
    """The schedule as a child process of `rollcall serve`: stops on SIGTERM or when the parent goes."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    name_this_process("rollcall-backup")
    os.nice(NICENESS)  # the intake and the importer come first for the CPU while it copies
    watch_parent(parent, stopping)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.secrets())
    run(settings, stopping)
