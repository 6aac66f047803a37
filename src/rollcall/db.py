"""The database: engines, sessions, migrations, and every dialect-specific detail.

Everything that differs between SQLite and PostgreSQL lives in this module, so the rest of the
code writes portable SQLAlchemy. SQLite runs in WAL mode with `synchronous=FULL` so a committed
transaction survives a power cut; PostgreSQL runs with `synchronous_commit=on` for the same reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from rollcall.config import ConfigError, Settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    pass


class DatabaseNotMigrated(Exception):
    """The database exists but its schema is not at the version this code needs."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso_utc(moment: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, the form every interface shows times in."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A point in time, stored as UTC and always read back as an aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[dt.datetime]:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        # SQLite stores text without an offset; PostgreSQL keeps the zone itself.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# A JSON document: JSONB on PostgreSQL, JSON text on SQLite.
JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def normalize_url(url: str) -> str:
    """Accept the plain `postgresql://` form people copy from elsewhere; we drive it with psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN, SAVEPOINT and DDL behave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "handle_error")
    def on_error(context: Any) -> None:
        # After an I/O error (the disk went read-only, or away) a connection keeps its old file
        # handles: treat it as lost, so the pool opens fresh ones once the disk is back.
        message = str(context.original_exception).lower()
        if any(sign in message for sign in ("disk i/o error", "readonly database", "unable to open database")):
            context.is_disconnect = True

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Writers take the write lock when they begin, not when they first write: a reader's
        # snapshot that later tries to write fails at once in WAL mode instead of waiting.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def create_engine(
    url: str, *, pool_size: int = 10, lease_seconds: float = 60.0, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite://"):
            raise ConfigError("rollcall needs a SQLite file, not an in-memory database")
        engine = sa.create_engine(
            url,
            hide_parameters=True,  # errors must not carry mobiles or bodies into logs
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _configure_sqlite(engine, busy_timeout_ms)
        return engine
    if url.startswith("postgresql"):
        # An importer holds its claimed calls' row locks in an open transaction. If its machine
        # dies, the server ends that session after the lease (no transaction of ours idles that
        # long) and its calls go to another importer; keepalives notice a vanished peer sooner.
        # force_custom_plan: foreign-key checks run as plans cached per session; one cached while
        # users or signups were nearly empty scans the table, and a pooled session keeps it while
        # the table grows (imports slowed tenfold within minutes). Custom plans see the real size.
        lease_ms = max(1000, int(lease_seconds * 1000))
        options = (
            f"-c synchronous_commit=on -c timezone=UTC -c idle_in_transaction_session_timeout={lease_ms} "
            "-c plan_cache_mode=force_custom_plan "
            "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
        )
        return sa.create_engine(
            url,
            hide_parameters=True,  # errors must not carry mobiles or bodies into logs
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={
                "options": options,
                "keepalives": 1,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
        )
    raise ConfigError("unsupported ROLLCALL_DATABASE_URL: use sqlite:///path/to/file.db or postgresql://...")


class _SQLiteWriteTurn:
    """The right to write a SQLite file: a thread lock within this process, and an advisory
    lock on `<file>.write-lock` across processes (`rollcall serve --workers N`, `rollcall worker`).

    The kernel hands the file lock to the next waiter as soon as it is released. A process that
    dies releases it with its file descriptors.
    """

    def __init__(self, path: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{path}.write-lock" if path else None
        self._file: Any = None

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._path is not None:
                if self._file is None:
                    self._file = open(self._path, "a+b")  # noqa: SIM115 (held for the process's life)
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        finally:
            self._threads.release()


@contextlib.contextmanager
def savepoint(connection: Connection, name: str = "rollcall_savepoint") -> Iterator[None]:
    """A savepoint that undoes the block's writes if it raises; the transaction goes on.

    Sent straight to the driver rather than through `Connection.begin_nested()`: it runs for
    every imported call, the SQL is the same on SQLite and PostgreSQL, and SQLAlchemy's
    bookkeeping of nested transactions cost more than the import's own statements.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        driver.execute(f"ROLLBACK TO SAVEPOINT {name}")
        driver.execute(f"RELEASE SAVEPOINT {name}")
        raise
    driver.execute(f"RELEASE SAVEPOINT {name}")


class Database:
    """The engines and session factories of one database.

    `writing()` opens a transaction that may write; `reading()` one that only reads. On SQLite
    they differ (BEGIN IMMEDIATE vs deferred); on PostgreSQL they are the same.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        lease_seconds: float = 60.0,
        busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    ) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine(
            self.url, pool_size=pool_size, lease_seconds=lease_seconds, busy_timeout_ms=busy_timeout_ms
        )
        self.dialect = self.engine.dialect.name
        self.write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.dialect == "sqlite" else self.engine
        )
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Writers queue on a lock that wakes the next one at
        # once, rather than on SQLite's busy handler, which sleeps and polls (with two API
        # processes that put p99 at half a second).
        self._write_turn = _SQLiteWriteTurn(self.engine.url.database) if self.dialect == "sqlite" else None
        # Called after a transaction that announced calls (`announce_calls`) has committed.
        self._announced: list[Callable[[], None]] = []
        for factory in (self._write_sessions, self._read_sessions):
            event.listen(factory, "after_commit", self._after_commit)

    def when_calls_announced(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit that released calls to the importer (intake,
        retries, mapping, repairs): this process's importer is told at once, whichever
        interface did it. Other processes hear it through NOTIFY (PostgreSQL) or their poll."""
        self._announced.append(listener)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_ANNOUNCED, False):
            for listener in self._announced:
                listener()

    @classmethod
    def for_settings(cls, settings: Settings) -> Database:
        return cls(
            settings.database_url,
            lease_seconds=settings.import_lease_seconds,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        )

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._write_turn or contextlib.nullcontext(), self._write_sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# -- dialect-specific statements ------------------------------------------------------------


def _dialect(session: Session | Connection) -> str:
    return session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name


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
    if moment is None:
        return None
    if _dialect(session) == "sqlite":
        return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment


def driver_json(value: Any) -> str:
    """A JSON column's value for the driver: JSON text (None is JSON null, as SQLAlchemy stores it)."""
    return orjson.dumps(value).decode()


def insert_rows_ignoring_conflicts(
    session: Session,
    table: sa.Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    returning: tuple[str, ...],
) -> list[tuple[Any, ...]]:
    """`INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING RETURNING ...`, one statement sent
    straight to the driver: the returned rows are those inserted.

    The values must be driver-ready (`driver_time`, `driver_json`). This is the intake's group
    commit: SQLAlchemy's per-row parameter processing cost four times the insert itself.
    """
    connection = session.connection()
    dialect = _dialect(session)
    # A statement may carry 32,766 parameters on SQLite and 65,535 on PostgreSQL.
    per_statement = max(1, 30_000 // len(columns))
    inserted: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        sql = _insert_rows_sql(dialect, table.name, columns, len(chunk), returning)
        parameters = tuple(value for row in chunk for value in row)
        inserted.extend(tuple(row) for row in connection.exec_driver_sql(sql, parameters))
    return inserted


@functools.lru_cache(maxsize=512)
def _insert_rows_sql(dialect: str, table: str, columns: tuple[str, ...], count: int, returning: tuple[str, ...]) -> str:
    marker = "?" if dialect == "sqlite" else "%s"
    row = "(" + ", ".join([marker] * len(columns)) + ")"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * count)} "
        f"ON CONFLICT DO NOTHING RETURNING {', '.join(returning)}"
    )


def rarely(session: Session | Connection, condition: Any) -> Any:
    """`condition`, which few rows meet (e.g. "the call is still waiting"), marked so on SQLite
    (`likelihood`): with statistics from ANALYZE, which know how many states there are but not
    that most calls are imported, SQLite would rather scan the table than use the index on it.
    PostgreSQL's statistics know the skew."""
    if _dialect(session) == "sqlite":
        return sa.func.likelihood(condition, sa.literal_column("0.001"))
    return condition


def upsert(
    session: Session | Connection,
    table: sa.Table,
    unique: tuple[str, ...],
    update: Callable[[sa.Table, Any], dict[str, Any]],
) -> Any:
    """`INSERT ... ON CONFLICT (unique) DO UPDATE SET ...` in the session's dialect (add RETURNING to taste).

    `update(table, excluded)` gives the SET clause: `excluded` holds the row that was offered.
    One atomic statement: concurrent callers never make a second row and never lose an update.
    """
    return _upsert(_dialect(session), table, unique, update)


@functools.cache
def _upsert(dialect: str, table: sa.Table, unique: tuple[str, ...], update: Callable[..., dict[str, Any]]) -> Any:
    dialect_insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
    statement = dialect_insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in unique], set_=update(table, statement.excluded)
    )


CALLS_CHANNEL = "rollcall_calls"


_ANNOUNCED = "rollcall.calls_announced"


def announce_calls(session: Session, *, in_process: bool = True) -> None:
    """Tell importers that calls are waiting, once the transaction commits: this process's
    through `Database.when_calls_announced` (not wanted by the writer, whose importer works in
    its gaps: `in_process=False`), every process's through NOTIFY on PostgreSQL (SQLite has no
    such thing; importers in other processes look every poll interval)."""
    if in_process:
        session.info[_ANNOUNCED] = True
    if _dialect(session) == "postgresql":
        session.connection().exec_driver_sql(f"NOTIFY {CALLS_CHANNEL}")


class CallsSignal:
    """Waits for `announce_calls` from any process, or for the timeout, whichever comes first."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._connection: Any = None

    def _listen(self) -> Any:
        if self._connection is None:
            import psycopg

            url = sa.engine.make_url(self._database.url).set(drivername="postgresql")
            self._connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._connection.execute(f"LISTEN {CALLS_CHANNEL}")
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


def lock_callpower_campaign(session: Session, callpower_campaign_id: int) -> None:
    """Serialize "is this CallPower campaign mapped?" decisions with mapping it.

    The importer takes this lock before it parks a call as unmapped and the mapping takes it
    before it releases the parked calls, so a call cannot be parked just after its campaign's
    parked calls were released. SQLite writers are already serialized by BEGIN IMMEDIATE.
    """
    if _dialect(session) == "postgresql":
        # A 64-bit lock key from the id's hash: campaign ids span the whole bigint range, and a
        # rare collision only makes two campaigns wait for each other.
        key = sa.func.hashtextextended(f"rollcall.callpower_campaign:{callpower_campaign_id}", 0)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def migrations_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("rollcall") / "migrations"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(database: Database) -> None:
    """Bring the schema to the newest migration; safe when several processes start at once."""
    from alembic import command

    # The write engine: on SQLite, BEGIN IMMEDIATE makes a second process wait, then see "done".
    with database.write_engine.begin() as connection:
        if database.dialect == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(42_4242)))
        command.upgrade(migrations_config(connection), "head")


@functools.cache
def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrations_config()).get_current_head()


def schema_is_current(database: Database) -> bool:
    from alembic.runtime.migration import MigrationContext

    head = _head_revision()
    with database.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current == head
