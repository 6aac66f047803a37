"""Calls released to the importers (stored, retried, mapped, repaired): announced when the
transaction that released them commits, and waited for by the import loop.

Kept apart from the loop itself (`queue`), so that whatever releases calls (the service, the
CLI's commands) need not import the loop and what it counts.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.db import Database, notify

CALLS_CHANNEL = "rollcall_calls"  # what importers in every process wait on (NOTIFY on PostgreSQL)


def announce_calls(session: Session, *, in_process: bool = True) -> None:
    """Tell importers that calls are waiting, once the transaction commits: this process's
    through `Database.listen` (not wanted by the writer, whose importer works in its gaps:
    `in_process=False`), every process's through NOTIFY on PostgreSQL (SQLite has no such thing;
    importers in other processes look every poll interval)."""
    notify(session, CALLS_CHANNEL, in_process=in_process)


class Signal:
    """Waits for a NOTIFY on `channel` from any process, or for the timeout, whichever comes
    first (PostgreSQL); SQLite has no such thing, so it waits the timeout (a poll)."""

    def __init__(self, database: Database, channel: str = CALLS_CHANNEL) -> None:
        self._database = database
        self._channel = channel
        self._connection: Any = None

    def _listen(self) -> Any:
        if self._connection is None:
            import psycopg

            url = sa.engine.make_url(self._database.url).set(drivername="postgresql")
            self._connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._connection.execute(f"LISTEN {self._channel}")
        return self._connection

    def wait(self, timeout: float) -> None:
        if self._database.dialect != "postgresql":
            time.sleep(timeout)
            return
        try:
            for _ in self._listen().notifies(timeout=timeout, stop_after=1):
                pass
        except Exception:  # the listening connection broke: fall back to the poll, reconnect later
            self.close()
            time.sleep(timeout)

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
