"""A stored secret read with the database's own driver, without SQLAlchemy, the models or alembic.

For `rollcall keys show`, which people run by hand and in scripts (`KEY=$(rollcall keys show)`):
importing SQLAlchemy and the models and letting alembic read every migration script took most of
a second before anything was read. This module reads one row of one table: it writes nothing and
never creates a database. The schema check is the same rule as `db.schema_is_current` (the
revision alembic stored is the newest migration's), with the newest revision taken from the
migration files' names (`0013_erasure_ledger.py` is revision `0013`; a test holds the two
equal to what alembic computes).
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any

VERSIONS = Path(__file__).parent / "migrations" / "versions"

# The names the generated secrets are stored under (table `stored_secrets`, `credentials.StoredSecret`).
CALLPOWER_KEY = "callpower_api_key"
ADMIN_TOKEN = "admin_token"
CONSOLE_SECRET = "console_session_secret"


SCHEMA_NOT_CURRENT = "the database schema is not current: run `rollcall migrate`"


class NotReadable(Exception):
    """The database cannot be read for this: missing, or its schema not current."""


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names (None for any other database)."""
    return url.split("///", 1)[-1].split("?", 1)[0] if url.startswith("sqlite") else None


def no_database(path: str) -> str:
    return f"no database at {path}: run `rollcall migrate` or `rollcall serve` first"


@functools.cache
def head_revision() -> str:
    """The newest migration's revision: the highest number among the migration files' names."""
    return max(path.name.split("_", 1)[0] for path in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def read_stored_secret(url: str, name: str) -> str | None:
    """The secret stored under `name` in the database at `url`, or None when none is stored;
    `NotReadable` when there is no database there or its schema is not current."""
    no_table: type[Exception]  # (what reading a table that is not there raises)
    path = sqlite_file(url)
    if path is not None:
        if not path or path == ":memory:" or not Path(path).exists():
            raise NotReadable(no_database(path))
        connection: Any = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        marker, no_table = "?", sqlite3.OperationalError  # (SQLite's "no such table")
    else:
        import psycopg

        plain = "postgresql://" + url.split("://", 1)[1]  # (the setting may name the driver)
        connection = psycopg.connect(plain, connect_timeout=10)
        marker, no_table = "%s", psycopg.errors.UndefinedTable
    try:
        try:
            version = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except no_table:
            version = None
        if version is None or version[0] != head_revision():
            raise NotReadable(SCHEMA_NOT_CURRENT)
        row = connection.execute(f"SELECT value FROM stored_secrets WHERE name = {marker}", (name,)).fetchone()
        return None if row is None else str(row[0])
    finally:
        connection.close()
