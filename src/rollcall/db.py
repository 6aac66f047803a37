"""The database: engines, sessions, column types, migrations.

SQLite runs in WAL mode with `synchronous=FULL` so a committed transaction survives a power cut;
PostgreSQL runs with `synchronous_commit=on` for the same reason. Connection set-up that differs
between them is here; statements that differ are in `dialect.py`. The rest of the code writes
portable SQLAlchemy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol, Self, TypeVar, cast

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from rollcall.config import ConfigError, Settings
from rollcall.dialect import execute, lost_file, notify_channel
from rollcall.errors import NotFound

POOL_SIZE = 10  # connections per engine, and as many again under load
# SQLite: the page cache of each connection of a process that imports (the writer process,
# `rollcall worker`), where SQLite's default is 2 MB. An import batch touches pages all over the
# members', signups' and posts' indexes; read from the file each time they cost a tenth of the
# importer's pace on a million calls (docs/benchmarks.md). Taken as used, per connection.
IMPORTER_PAGE_CACHE_MIB = 64


# What the integer columns hold: row ids and counts are `integer`, CallPower's ids `bigint`.
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> sa.Table:
    """A mapped class's table, for statements built on the table itself (Core, no ORM)."""
    return cast(sa.Table, model.__table__)


M = TypeVar("M", bound=Base)


def row_of(session: Session, model: type[M], key: Any, kind: str, *, for_update: bool = False) -> M:
    """The row of `model` with this primary key, or `NotFound` naming it as a `kind`."""
    found = session.get(model, key, with_for_update=for_update)
    if found is None:
        raise NotFound(kind, key)
    return found


class DatabaseNotMigrated(Exception):
    """The database exists but its schema is not at the version this code needs."""


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


def _configure_sqlite(engine: Engine, busy_timeout_ms: int, synchronous: str, page_cache_mib: int | None) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control away from pysqlite so BEGIN, SAVEPOINT and DDL behave.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if page_cache_mib is not None:
            cursor.execute(f"PRAGMA cache_size = {-1024 * int(page_cache_mib)}")  # (negative: KiB)
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # What is deleted or overwritten is zeroed within its page, not left in free space (an
        # erased member's number must be found nowhere in the file: an importer's update leaves the
        # row's old copy behind otherwise). FAST costs no extra I/O; ON (which also zeroes whole
        # freed pages) cost the intake a third of its throughput, so only erasures use it.
        cursor.execute("PRAGMA secure_delete = FAST")
        cursor.close()

    @event.listens_for(engine, "handle_error")
    def on_error(context: Any) -> None:
        if lost_file(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Writers take the write lock when they begin, not when they first write: a reader's
        # snapshot that later tries to write fails at once in WAL mode instead of waiting.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        execute(conn, f"BEGIN {mode}")


def create_engine(
    url: str,
    *,
    lease_seconds: float,
    busy_timeout_ms: int,
    pool_size: int = POOL_SIZE,
    durable_commits: bool = True,
    page_cache_mib: int | None = None,
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
        _configure_sqlite(engine, busy_timeout_ms, "FULL" if durable_commits else "NORMAL", page_cache_mib)
        return engine
    if url.startswith("postgresql"):
        # An importer holds its claimed calls' row locks in an open transaction. If its machine
        # dies, the server ends that session after the lease (no transaction of ours idles that
        # long) and its calls go to another importer; keepalives notice a vanished peer sooner.
        # force_custom_plan: foreign-key checks run as plans cached per session; one cached while
        # users or signups were nearly empty scans the table, and a pooled session keeps it while
        # the table grows (imports slowed tenfold within minutes). Custom plans see the real size.
        lease_ms = max(1000, int(lease_seconds * 1000))
        synchronous = "on" if durable_commits else "off"  # off: a crash may lose the last commits, never the database
        options = (
            f"-c synchronous_commit={synchronous} -c timezone=UTC -c idle_in_transaction_session_timeout={lease_ms} "
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


class Part(Protocol):
    """Something a module keeps in a transaction (the kept counts' changes, say): written just
    before the transaction commits, and copied when a savepoint begins, so that rolling the
    savepoint back forgets what was added inside it."""

    def before_commit(self, session: Session) -> None: ...

    def copy(self) -> Self: ...


P = TypeVar("P", bound=Part)


@dataclass
class Transaction:
    """What travels with one transaction, beside its statements: the database it belongs to,
    the parts modules keep in it (one of each kind, made on first use), and the channels it
    notifies once it commits. Reached by `transaction(session)`, never by keys of `Session.info`."""

    database: Database
    parts: dict[type[Any], Part] = field(default_factory=dict)
    notified: set[str] = field(default_factory=set)


_TRANSACTION = "rollcall"  # the one key of `Session.info` this module uses


def transaction(session: Session) -> Transaction:
    """The current transaction of a session of a `Database`."""
    found = session.info.get(_TRANSACTION)
    if not isinstance(found, Transaction):
        found = session.info[_TRANSACTION] = Transaction(session.info["rollcall.database"])
    return found


def part(session: Session, kind: type[P]) -> P:
    """This transaction's part of `kind` (made now if it has none yet)."""
    parts = transaction(session).parts
    found = parts.get(kind)
    if found is None:
        found = parts[kind] = kind()
    return found  # type: ignore[return-value]


def notify(session: Session, channel: str, *, in_process: bool = True) -> None:
    """Once this transaction commits, wake what waits on `channel`: in this process the
    listeners of `Database.listen` (unless `in_process` is False), in every process a NOTIFY
    (PostgreSQL; SQLite has none: other processes poll)."""
    if in_process:
        transaction(session).notified.add(channel)
    notify_channel(session, channel)


@contextlib.contextmanager
def savepoint(session: Session, name: str = "rollcall_savepoint") -> Iterator[None]:
    """A savepoint that undoes the block's writes if it raises; the transaction goes on. What the
    block added to the transaction's parts (`part`) is forgotten with them.

    Sent straight to the driver rather than through `Connection.begin_nested()`: it runs for
    every imported call, the SQL is the same on SQLite and PostgreSQL, and SQLAlchemy's
    bookkeeping of nested transactions cost more than the import's own statements.
    """
    kept = transaction(session)
    before = {kind: value.copy() for kind, value in kept.parts.items()}
    execute(session, f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        execute(session, f"ROLLBACK TO SAVEPOINT {name}")
        execute(session, f"RELEASE SAVEPOINT {name}")
        kept.parts = before
        raise
    execute(session, f"RELEASE SAVEPOINT {name}")


_REPEATABLE_READ = sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


class Database:
    """The engines and session factories of one database.

    `writing()` opens a transaction that may write; `reading()` one that only reads, and sees
    one snapshot of the database from its first statement to its end. On SQLite they differ by
    BEGIN IMMEDIATE vs deferred; on PostgreSQL by READ COMMITTED vs REPEATABLE READ.
    """

    def __init__(
        self,
        url: str,
        settings: Settings | None = None,
        *,
        durable_commits: bool = True,
        page_cache_mib: int | None = None,
    ) -> None:
        """The database at `url`, its engine set up by `settings` (their defaults if not given).

        `durable_commits=False` commits without waiting for the disk (SQLite's `synchronous=NORMAL`,
        PostgreSQL's `synchronous_commit=off`): a power cut may lose this process's last commits,
        never the database. Only for work that is done again when its record is lost (the
        deliverer's outcomes: a delivery is then sent again). `page_cache_mib`: SQLite's page
        cache per connection (None: SQLite's default; `IMPORTER_PAGE_CACHE_MIB` where calls are
        imported)."""
        settings = settings or Settings.model_construct()
        self.url = normalize_url(url)
        self.engine = create_engine(
            self.url,
            lease_seconds=settings.import_lease_seconds,
            busy_timeout_ms=settings.sqlite_busy_timeout_ms,
            durable_commits=durable_commits,
            page_cache_mib=page_cache_mib,
        )
        self.dialect = self.engine.dialect.name
        self.write_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.dialect == "sqlite" else self.engine
        )
        self.settings = settings
        info = {"rollcall.database": self}  # how `transaction(session)` finds its database
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False, info=info)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        # SQLite has one writer at a time. Writers queue on a lock that wakes the next one at
        # once, rather than on SQLite's busy handler, which sleeps and polls (with two API
        # processes that put p99 at half a second).
        self._write_turn = _SQLiteWriteTurn(self.engine.url.database) if self.dialect == "sqlite" else None
        # Called after a transaction that notified their channel (`notify`) has committed.
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        for factory in (self._write_sessions, self._read_sessions):
            event.listen(factory, "before_commit", self._before_commit)
            event.listen(factory, "after_commit", self._after_commit)
            event.listen(factory, "after_rollback", self._after_rollback)

    def listen(self, channel: str, listener: Callable[[], None]) -> None:
        """Call `listener` after every commit in this process that notified `channel` (`notify`),
        whichever interface made it."""
        self._listeners.setdefault(channel, []).append(listener)

    @staticmethod
    def _before_commit(session: Session) -> None:
        for kept in transaction(session).parts.values():
            kept.before_commit(session)

    def _after_commit(self, session: Session) -> None:
        done = session.info.pop(_TRANSACTION, None)
        for channel in done.notified if isinstance(done, Transaction) else ():
            for listener in self._listeners.get(channel, ()):
                listener()

    @staticmethod
    def _after_rollback(session: Session) -> None:
        session.info.pop(_TRANSACTION, None)

    @classmethod
    def for_settings(cls, settings: Settings, *, page_cache_mib: int | None = None) -> Database:
        return cls(settings.database_url, settings, page_cache_mib=page_cache_mib)

    @contextlib.contextmanager
    def writing(self) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error."""
        with self._write_turn or contextlib.nullcontext(), self._write_sessions() as session, session.begin():
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            if self.dialect == "postgresql":
                # One snapshot for the whole read, as SQLite's read transactions are: at READ
                # COMMITTED each statement would see the commits made before it, and a report's
                # totals, rows and callers, read in several statements, could disagree.
                session.execute(_REPEATABLE_READ)
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def erasing(self) -> Iterator[Session]:
        """`writing()` for an erasure: on SQLite, everything it deletes is zeroed in the file,
        whole freed pages included (`secure_delete = ON` for this transaction only)."""
        with self.writing() as session:
            if self.dialect != "sqlite":
                yield session
                return
            session.execute(sa.text("PRAGMA secure_delete = ON"))
            try:
                yield session
            finally:  # (the deletions happened in the statements: zeroed already)
                session.execute(sa.text("PRAGMA secure_delete = FAST"))

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and truncate it, so that what
        was just erased is left in neither (with `secure_delete`, the file's freed space is zeroed).
        Best effort: a reader in the middle of a long read keeps the log until it is done. Nothing
        on PostgreSQL (see docs/deploy.md on VACUUM and backups)."""
        if self.dialect != "sqlite":
            return
        with self._write_turn or contextlib.nullcontext():
            connection = self.write_engine.raw_connection()
            try:
                connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.close()


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


def schema_is_current(database: Database) -> bool:
    """The revision alembic stored is the newest migration's (`glance.head_revision`, which
    `rollcall keys show` checks the same way without SQLAlchemy)."""
    from rollcall.glance import head_revision

    with database.engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return False
        current = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    return bool(current == head_revision())
