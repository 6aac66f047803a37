"""Statements that SQLite and PostgreSQL write differently: conflicts, upserts, multi-row
inserts sent straight to the driver, notifications, advisory locks, planner hints.

Everything here takes a session or connection and picks its dialect; the rest of the code
calls these and stays portable.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from rollcall.times import iso_utc

T = TypeVar("T")


def _dialect(session: Session | Connection) -> str:
    return session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name


def lost_file(error: BaseException) -> bool:
    """SQLite: an I/O error (the disk went read-only, or away) after which a connection keeps its
    old file handles; the pool must open fresh ones once the disk is back."""
    message = str(error).lower()
    return any(sign in message for sign in ("disk i/o error", "readonly database", "unable to open database"))


def execute(
    session: Session | Connection, sql: str, parameters: Any = None, *, many: bool = False, numbered: bool = False
) -> Any:
    """Send a statement (DB-API parameters: `?` on SQLite, `%s` on PostgreSQL, or PostgreSQL's own
    `$1`, `$2`, ... where `numbered`) straight to the driver's cursor in the session's
    transaction; the cursor, to fetch from.

    psycopg turns `%s` into `$n` by a regular expression over the statement, and remembers the
    result only for statements of at most 50 parameters: a batch's `INSERT ... VALUES` of
    thousands was parsed again each time, 2.3 µs a parameter (docs/benchmarks.md). Numbered
    statements go through its `RawCursor`, which sends them as they are.

    SQLAlchemy's `exec_driver_sql` costs 20 µs per statement here against the driver's 3, and
    the intake's commit sends half a dozen (docs/benchmarks.md, "One call at a time"). What
    SQLAlchemy does on an error is kept: the driver's error comes as SQLAlchemy's (so callers
    catch `sa.exc.OperationalError` alike), with its parameters hidden (they may hold a mobile),
    and a connection whose file or server is gone is invalidated (the pool opens a fresh one).
    """
    connection = session.connection() if isinstance(session, Session) else session
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = _raw_cursor()(driver) if numbered and connection.dialect.name == "postgresql" else driver.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
    except Exception as error:
        dialect = connection.dialect
        base = dialect.loaded_dbapi.Error
        if not isinstance(error, base):
            raise
        lost = dialect.is_disconnect(error, driver, cursor) or (dialect.name == "sqlite" and lost_file(error))
        if lost:
            connection.invalidate(error)
        raise sa.exc.DBAPIError.instance(
            sql, None, error, base, hide_parameters=True, dialect=dialect, connection_invalidated=lost, ismulti=many
        ) from error
    return cursor


@functools.cache
def _raw_cursor() -> Any:
    from psycopg import RawCursor  # (imported where PostgreSQL is used: the CLI starts without it)

    return RawCursor


def placeholder(session: Session | Connection) -> str:
    """The driver's mark for a parameter in SQL sent by `execute`: `?` (sqlite3) or `%s` (psycopg)."""
    return _PLACEHOLDERS[_dialect(session)]


_PLACEHOLDERS = {"sqlite": "?", "postgresql": "%s"}


def numbered_marks(session: Session | Connection, count: int) -> list[str]:
    """The marks of `count` parameters in SQL sent by `execute(..., numbered=True)`, in order:
    `?` on SQLite, `$1`, `$2`, ... on PostgreSQL (a statement of many parameters is not parsed
    again on each execution)."""
    return ["?"] * count if _dialect(session) == "sqlite" else [f"${at}" for at in range(1, count + 1)]


def for_share(session: Session | Connection) -> str:
    """What ends a `SELECT` sent by `execute` to hold its rows under a share lock until the
    transaction ends: ` FOR SHARE` on PostgreSQL; nothing on SQLite (a writer holds the file)."""
    return " FOR SHARE" if _dialect(session) == "postgresql" else ""


def insert_ignoring_conflicts(session: Session | Connection, table: sa.Table) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` in the session's dialect (built once per table)."""
    return _insert_ignoring_conflicts(_dialect(session), table)


@functools.cache
def _insert_ignoring_conflicts(dialect: str, table: sa.Table) -> Any:
    dialect_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    return dialect_insert(table).on_conflict_do_nothing()


def driver_time(session: Session | Connection, moment: dt.datetime | None) -> Any:
    """An aware datetime as the driver takes it for a `UTCDateTime` column, for statements sent
    straight to the driver: on SQLite the text SQLAlchemy itself writes (naive UTC, always with
    microseconds, so text order is time order); on PostgreSQL the datetime itself."""
    return driver_times(session)(moment)


def driver_times(session: Session | Connection) -> Callable[[dt.datetime | None], Any]:
    """`driver_time` for many values of one session."""
    return sqlite_time_text if _dialect(session) == "sqlite" else _same


def sqlite_time_text(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _same(value: T) -> T:
    return value


def from_driver_time(value: Any) -> dt.datetime | None:
    """A `UTCDateTime` column's value as a statement sent straight to the driver returns it (text
    on SQLite, a datetime on PostgreSQL): an aware UTC datetime."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def iso_from_driver_time(value: Any) -> str | None:
    """A `UTCDateTime` column's driver value written as `times.iso_utc` writes it, without making
    a datetime of SQLite's text (which is UTC, always with microseconds)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value[:10] + "T" + value[11:]
        return (text[:-7] if text.endswith(".000000") else text) + "Z"
    return iso_utc(from_driver_time(value))


def driver_json(value: Any) -> str:
    """A JSON column's value for the driver: JSON text (None is JSON null, as SQLAlchemy stores it)."""
    return orjson.dumps(value).decode()


# A statement may carry 32,766 parameters on SQLite and 65,535 on PostgreSQL.
_PARAMETERS_PER_STATEMENT = 30_000


def named_rows(columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows given by column name, as the positional rows `insert_rows` and `update_rows` send (in
    `columns` order): a row's values are named where it is made, and ordered in one place."""
    if len(columns) == 1:
        return [(row[columns[0]],) for row in rows]
    values = operator.itemgetter(*columns)
    return [values(row) for row in rows]


def insert_rows(
    session: Session,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    *,
    returning: tuple[str, ...] = (),
    conflict: str = "",
) -> list[tuple[Any, ...]]:
    """`INSERT ... VALUES (...), (...) [conflict] RETURNING ...`, sent straight to the driver in
    as few statements as the parameter limits allow; the returned rows of all of them.

    The values must be driver-ready (`driver_times`, `driver_json`), and `conflict` is SQL both
    dialects read alike (`ON CONFLICT DO NOTHING`, `ON CONFLICT (a, b) DO UPDATE SET ...`). The
    intake's group commit and the importer's batches write this way: SQLAlchemy's per-row
    parameter processing cost more than the statements themselves (docs/benchmarks.md).
    """
    dialect = _dialect(session)
    per_statement = max(1, _PARAMETERS_PER_STATEMENT // len(columns))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_rows_sql(dialect, table.name, columns, len(chunk), returning, conflict)
        cursor = execute(session, sql, tuple(itertools.chain.from_iterable(chunk)), numbered=True)
        if returning:
            found.extend(tuple(row) for row in cursor.fetchall())
    return found


def insert_rows_ignoring_conflicts(
    session: Session,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """`insert_rows` that skips rows a unique index already holds: the returned rows are those inserted."""
    return insert_rows(session, table, columns, rows, returning=returning, conflict="ON CONFLICT DO NOTHING")


def _numbered_row(n: int, width: int) -> str:
    """The `n`th row (from 0) of a statement's numbered parameters, `width` a row: `($4, $5, $6)`."""
    return "(" + ", ".join(f"${at}" for at in range(n * width + 1, (n + 1) * width + 1)) + ")"


@functools.lru_cache(maxsize=512)
def _insert_rows_sql(
    dialect: str, table: str, columns: tuple[str, ...], count: int, returning: tuple[str, ...], conflict: str
) -> str:
    width = len(columns)
    if dialect == "sqlite":
        values = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * count)
    else:  # (numbered: `execute(..., numbered=True)`)
        values = ", ".join(_numbered_row(n, width) for n in range(count))
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {conflict}"
    return sql + (f" RETURNING {', '.join(returning)}" if returning else "")


def update_rows(
    session: Session, table: sa.Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]], *, key: str = "id"
) -> None:
    """`UPDATE table SET column = ?, ... WHERE key = ?` for each row (its values, then its key),
    sent straight to the driver; the values must be driver-ready, and a key given twice takes
    its last row.

    SQLite: one executemany (in-process, each row costs microseconds). PostgreSQL: one statement,
    `UPDATE ... FROM (VALUES ...)`, per `_PARAMETERS_PER_STATEMENT` values: an executemany there
    is a statement executed per row, which measured the largest part of the webhooks
    deliverer's database time (docs/benchmarks.md)."""
    if not rows:
        return
    if _dialect(session) == "sqlite":
        assignments = ", ".join(f"{column} = ?" for column in columns)
        execute(session, f"UPDATE {table.name} SET {assignments} WHERE {key} = ?", list(rows), many=True)
        return
    last = list({row[-1]: row for row in rows}.values())
    per_statement = max(1, _PARAMETERS_PER_STATEMENT // (len(columns) + 1))
    for start in range(0, len(last), per_statement):
        chunk = last[start : start + per_statement]
        sql = _update_rows_sql(table, columns, key, len(chunk))
        execute(session, sql, tuple(itertools.chain.from_iterable(chunk)), numbered=True)


@functools.lru_cache(maxsize=64)
def _update_rows_sql(table: sa.Table, columns: tuple[str, ...], key: str, count: int) -> str:
    """PostgreSQL's `UPDATE ... FROM (VALUES ...)`: the first row casts each value to its column's
    type, which types the whole column (a column of NULLs would otherwise be text)."""
    names = (*columns, key)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    types = [table.c[name].type.compile(dialect=dialect) for name in names]
    width = len(names)
    first = "(" + ", ".join(f"${at + 1}::{type_}" for at, type_ in enumerate(types)) + ")"
    values = ", ".join([first, *(_numbered_row(n, width) for n in range(1, count))])
    assignments = ", ".join(f"{column} = v.{column}" for column in columns)
    return (
        f"UPDATE {table.name} SET {assignments} FROM (VALUES {values}) AS v({', '.join(names)})"
        f" WHERE {table.name}.{key} = v.{key}"
    )


def utc_day(session: Session | Connection, column: Any) -> Any:
    """The UTC date of a `UTCDateTime` column, in SQL (SQLite keeps UTC text; PostgreSQL a timestamptz)."""
    if _dialect(session) == "sqlite":
        return sa.func.date(column)
    return sa.cast(sa.func.timezone("UTC", column), sa.Date)


def lock_for_recount(session: Session, table: str) -> None:
    """PostgreSQL: no writes to `table` until the transaction ends (SHARE mode: reads go on),
    once the writes in progress have committed. SQLite writers are serialized anyway."""
    if _dialect(session) == "postgresql":
        execute(session, f"LOCK TABLE {table} IN SHARE MODE")


def rarely(session: Session | Connection, condition: Any) -> Any:
    """`condition`, which few rows meet (e.g. "the call is still waiting"), marked so on SQLite
    (`likelihood`): with statistics from ANALYZE, which know how many states there are but not
    that most calls are imported, SQLite would rather scan the table than use the index on it.
    PostgreSQL's statistics know the skew."""
    if _dialect(session) == "sqlite":
        return sa.func.likelihood(condition, sa.literal_column("0.001"))
    return condition


def upsert_rows(
    session: Session,
    table: sa.Table,
    unique: tuple[str, ...],
    update: Callable[[sa.Table, Any], dict[str, Any]],
    rows: Sequence[dict[str, Any]],
) -> None:
    """`INSERT ... ON CONFLICT (unique) DO UPDATE SET ...` of rows of driver-ready values
    (`driver_times`, `driver_dates`), all with the same columns, in one executemany straight to
    the driver (the statement compiled once per dialect and columns). `update(table, excluded)`
    gives the SET clause: `excluded` holds the row that was offered. One atomic statement per
    row: concurrent callers never make a second row and never lose an update. The intake's commit
    upserts the kept counts and the CallPower campaign this way; through SQLAlchemy's execution
    each upsert cost more than the commit's sync to disk."""
    if not rows:
        return
    sql, order = _upsert_sql(_dialect(session), table, unique, update, tuple(rows[0]))
    execute(session, sql, [tuple(row[name] for name in order) for row in rows], many=True)


@functools.cache
def _upsert_sql(
    dialect: str, table: sa.Table, unique: tuple[str, ...], update: Callable[..., Any], columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """The upsert's SQL with positional parameters, and the columns in their order."""
    insert = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    statement = insert.values({name: sa.bindparam(name) for name in columns}).on_conflict_do_update(
        index_elements=[table.c[name] for name in unique], set_=update(table, insert.excluded)
    )
    if dialect == "sqlite":
        target: Any = sqlite.dialect(paramstyle="qmark")
    else:
        target = postgresql.psycopg.dialect(paramstyle="format")  # type: ignore[no-untyped-call]
    compiled = statement.compile(dialect=target)
    return str(compiled), tuple(compiled.positiontup or ())


def driver_dates(session: Session | Connection) -> Callable[[dt.date], Any]:
    """A `Date` column's value as the driver takes it: SQLite keeps ISO text, as SQLAlchemy writes it."""
    return dt.date.isoformat if _dialect(session) == "sqlite" else _same


def notify_channel(session: Session, channel: str) -> None:
    """PostgreSQL: NOTIFY `channel` when the transaction commits (every process's listeners wake).
    SQLite has no such thing: other processes look every poll interval."""
    if _dialect(session) == "postgresql":
        execute(session, f"NOTIFY {channel}")


_EVENTS_LOCK = 4_242_001  # the advisory lock that orders event ids (events.py)


def lock_events(session: Session) -> None:
    """PostgreSQL: take the events lock until the transaction ends, so event ids become visible
    in the order they were given. SQLite writers are serialized anyway."""
    if _dialect(session) == "postgresql":
        execute(session, f"SELECT pg_advisory_xact_lock({_EVENTS_LOCK})")


def lock_campaign(session: Session, campaign_id: int) -> None:
    """Serialize "is this source campaign mapped?" decisions with mapping it.

    The importer takes this lock before it parks a call as unmapped and the mapping takes it
    before it releases the parked calls, so a call cannot be parked just after its campaign's
    parked calls were released. SQLite writers are already serialized by BEGIN IMMEDIATE.
    """
    if _dialect(session) == "postgresql":
        # A 64-bit lock key from the id's hash: campaign ids span the whole bigint range, and a
        # rare collision only makes two campaigns wait for each other. (The text is the one of
        # the release before: processes of both share the lock while they run side by side.)
        key = sa.func.hashtextextended(f"rollcall.callpower_campaign:{campaign_id}", 0)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
