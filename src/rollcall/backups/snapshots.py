"""Taking, listing, verifying and restoring backups.

A backup is one file named by its time (`rollcall-20261206-173000.sqlite3`, or `.dump` on
PostgreSQL: `pg_dump`'s custom format) and its manifest beside it (`.json`: time, rollcall version,
schema revision, rows per table, size, SHA-256). It is written under a temporary name, synced,
checked, renamed into place and the directory synced: a backup that is listed is whole.

- SQLite: the online backup API copies the file in one step from a read transaction, which in
  WAL mode holds up no writer (the intake keeps answering); the copy is then checked with
  `integrity_check`.
- PostgreSQL: `pg_dump` runs in a snapshot exported from a transaction that also counts the rows,
  so the manifest's counts are those of the dump; `pg_restore --list` then reads it through.

`verify` restores a backup into a temporary place (a file beside it, or a scratch database on
the same server), checks it, brings its schema forward and recounts the kept counts. `restore`
verifies, keeps the current database aside (renamed, never deleted), puts the verified copy in its
place and applies the erasures made since (`reconcile`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog

from rollcall import __version__
from rollcall.calls import statistics
from rollcall.config import Settings
from rollcall.db import Database, migrate, normalize_url, schema_is_current
from rollcall.errors import RollcallError
from rollcall.members import audit, ledger
from rollcall.members.service import erase_again
from rollcall.progress import Progress, quiet
from rollcall.times import iso_utc, parse_timestamp, utcnow

log = structlog.get_logger("rollcall.backups")

PREFIX = "rollcall-"
SUFFIXES = {"sqlite": ".sqlite3", "postgresql": ".dump"}
MANIFEST = ".json"
CHUNK = 1 << 20  # bytes read at a time for the SHA-256
POLL = 0.2  # seconds between looks at how far a copy has come


class BackupFailed(RollcallError):
    """A backup, verification or restore that cannot be done; `reason` names the kind (metrics)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Manifest:
    file: str
    created_at: str
    rollcall_version: str
    dialect: str
    schema_revision: str | None
    tables: dict[str, int]
    size: int
    sha256: str
    verified_at: str | None = None

    def document(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Manifest:
        return cls(**{name: document.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

    @property
    def created(self) -> dt.datetime:
        return parse_timestamp(self.created_at)


@dataclass(frozen=True)
class Backup:
    """A backup file in a directory, with its manifest if it has one."""

    path: Path
    manifest: Manifest | None

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def created(self) -> dt.datetime | None:
        return self.manifest.created if self.manifest else None


@dataclass(frozen=True)
class Verified:
    backup: Path
    manifest: Manifest | None
    schema_revision: str | None
    tables: dict[str, int]
    copy: str  # the checked copy: a file path (SQLite) or a database URL (PostgreSQL)
    counts_corrected: int = 0


@dataclass(frozen=True)
class Reconciled:
    applied: list[str] = field(default_factory=list)  # member ids erased again
    appended: int = 0  # entries the ledger file lacked


@dataclass(frozen=True)
class Restored:
    backup: Path
    kept_aside: str | None
    schema_revision: str | None
    migrated_to: str | None
    reconciled: Reconciled


# -- files -------------------------------------------------------------------------------------


def manifest_path(backup: Path) -> Path:
    return backup.with_suffix(MANIFEST)


def _write_atomically(path: Path, content: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, path)
    ledger.sync_directory(path.parent)


def _write_manifest(backup: Path, manifest: Manifest) -> None:
    _write_atomically(manifest_path(backup), json.dumps(manifest.document(), indent=2).encode() + b"\n")


def read_manifest(backup: Path) -> Manifest | None:
    path = manifest_path(backup)
    if not path.exists():
        return None
    try:
        return Manifest.of(json.loads(path.read_text()))
    except (ValueError, TypeError) as error:
        raise BackupFailed("damaged", f"the manifest {path} cannot be read: {error}") from None


def _sha256(path: Path, progress: Progress) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress("checksum", done, total)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


@contextlib.contextmanager
def _watching(path: Path, step: str, total: int | None, progress: Progress) -> Iterator[None]:
    """Report how far a file written by someone else (SQLite, pg_dump) has grown, until done."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL):
            with contextlib.suppress(OSError):
                progress(step, path.stat().st_size, total)

    watcher = threading.Thread(target=watch, name="rollcall-backup-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        progress(step, size, max(size, total or 0))


def list_backups(directory: str | os.PathLike[str]) -> list[Backup]:
    """The backups in a directory, oldest first (by the time in their names)."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [
        path
        for path in folder.iterdir()
        if path.name.startswith(PREFIX) and path.suffix in SUFFIXES.values() and path.is_file()
    ]
    backups = []
    for path in sorted(found, key=lambda path: path.name):
        try:
            manifest = read_manifest(path)
        except BackupFailed:
            manifest = None
        backups.append(Backup(path, manifest))
    return backups


def newest_backup(directory: str | os.PathLike[str]) -> Backup | None:
    listed = [backup for backup in list_backups(directory) if backup.manifest is not None]
    return listed[-1] if listed else None


def _name(directory: Path, suffix: str, at: dt.datetime) -> Path:
    stem = f"{PREFIX}{at:%Y%m%d-%H%M%S}"
    path = directory / f"{stem}{suffix}"
    n = 1
    while path.exists() or manifest_path(path).exists():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path


def prune(directory: Path, keep: int) -> list[Path]:
    """Remove the oldest backups beyond `keep` (each with its manifest); the ones removed."""
    listed = list_backups(directory)
    removed = []
    for backup in listed[: max(0, len(listed) - keep)]:
        backup.path.unlink(missing_ok=True)
        manifest_path(backup.path).unlink(missing_ok=True)
        removed.append(backup.path)
    return removed


# -- SQLite ------------------------------------------------------------------------------------


def _sqlite_path(database: Database | str) -> Path:
    url = sa.engine.make_url(database.url if isinstance(database, Database) else normalize_url(database))
    if not url.database or url.database == ":memory:":
        raise BackupFailed("error", "only a SQLite file can be backed up, not an in-memory database")
    return Path(url.database)


def _sqlite_facts(path: Path) -> tuple[str | None, dict[str, int]]:
    """Check a SQLite file whole (`integrity_check`) and read its schema revision and rows per
    table; `BackupFailed("damaged")` if it is not a sound SQLite database."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupFailed("damaged", f"{path} is damaged: {'; '.join(problems[:3])}")
            names = [
                row[0]
                for row in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
                )
            ]
            tables = {name: int(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in names}
            revision = None
            if "alembic_version" in names:
                row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise BackupFailed("damaged", f"{path} is not a readable SQLite database ({error})") from None
    return revision, tables


def _sqlite_backup(database: Database, partial: Path, progress: Progress) -> None:
    source_path = _sqlite_path(database)
    source = sqlite3.connect(source_path, timeout=database.settings.sqlite_busy_timeout_ms / 1000)
    try:
        page_size = source.execute("PRAGMA page_size").fetchone()[0]
        pages = source.execute("PRAGMA page_count").fetchone()[0]
        target = sqlite3.connect(partial)
        try:
            target.execute("PRAGMA journal_mode = OFF")  # a fresh file: nothing to roll back to
            target.execute("PRAGMA synchronous = OFF")  # synced once, whole, below
            with _watching(partial, "copy", page_size * pages, progress):
                # One step: the copy reads in one transaction, which holds up no writer in WAL
                # mode. (In several steps, a write between two of them starts the copy again.)
                source.backup(target)
            target.execute("PRAGMA journal_mode = DELETE")  # a file complete in itself
        finally:
            target.close()
    except sqlite3.Error as error:
        partial.unlink(missing_ok=True)
        reason = "no_space" if "full" in str(error).lower() else "error"
        raise BackupFailed(reason, f"the copy failed: {error}") from None
    finally:
        source.close()
    _fsync(partial)


# -- PostgreSQL --------------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            "tool_missing",
            f"{name} is not installed: PostgreSQL backups need its client tools "
            "(Debian/Ubuntu: apt-get install postgresql-client, of the server's major version or newer)",
        )
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that gives it."""
    parsed = sa.engine.make_url(normalize_url(url))
    environment = {**os.environ}
    if parsed.password:
        environment["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), environment


def _run(command: list[str], environment: dict[str, str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupFailed("damaged" if what == "read" else "error", f"{command[0]}: {' '.join(detail[-3:])}")


def _postgres_tables(connection: sa.Connection) -> dict[str, int]:
    names = connection.scalars(
        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    ).all()
    return {name: int(connection.scalar(sa.text(f'SELECT count(*) FROM "{name}"')) or 0) for name in names}


def _postgres_revision(connection: sa.Connection) -> str | None:
    try:
        revision = connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except sa.exc.ProgrammingError:
        return None
    return None if revision is None else str(revision)


def _postgres_backup(database: Database, partial: Path, progress: Progress) -> tuple[str | None, dict[str, int]]:
    pg_dump = _tool("pg_dump")
    target, environment = _libpq(database.url)
    reading = database.engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with reading as connection, connection.begin():
        snapshot = connection.scalar(sa.text("SELECT pg_export_snapshot()"))
        revision = _postgres_revision(connection)
        tables = _postgres_tables(connection)
        size = connection.scalar(sa.text("SELECT pg_database_size(current_database())"))
        with _watching(partial, "dump", None if size is None else int(size), progress):
            _run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={partial}", f"--dbname={target}"],
                environment,
                "dump",
            )
    _fsync(partial)
    _run([_tool("pg_restore"), "--list", str(partial)], environment, "read")
    return revision, tables


def _url_of(url: str, name: str) -> str:
    """The URL of another database on the same server."""
    return sa.engine.make_url(normalize_url(url)).set(database=name).render_as_string(hide_password=False)


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(_url_of(url, "postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _database_name(url: str) -> str:
    return str(sa.engine.make_url(normalize_url(url)).database)


# -- taking one --------------------------------------------------------------------------------


def take(
    database: Database, directory: str | os.PathLike[str], *, keep: int | None = None, progress: Progress = quiet
) -> tuple[Path, Manifest]:
    """Take a backup into `directory` while the service runs, check it and describe it; with
    `keep`, remove the oldest beyond that many. Appends to the directory's erasure ledger what it
    lacks first, so the ledger beside a backup knows every erasure the backup does."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BackupFailed("error", f"cannot use {folder} for backups: {error.strerror}") from None
    if schema_is_current(database):  # (a database of an older release has no ledger yet)
        reconcile(database, [folder], apply=False)
    at = utcnow()
    path = _name(folder, SUFFIXES[database.dialect], at)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if database.dialect == "sqlite":
            _sqlite_backup(database, partial, progress)
            revision, tables = _sqlite_facts(partial)
        else:
            revision, tables = _postgres_backup(database, partial, progress)
        digest = _sha256(partial, progress)
        os.replace(partial, path)
        ledger.sync_directory(folder)
    except OSError as error:
        reason = "no_space" if error.errno == 28 else "error"
        raise BackupFailed(reason, f"the backup could not be written to {folder}: {error.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    manifest = Manifest(
        file=path.name,
        created_at=iso_utc(at) or "",
        rollcall_version=__version__,
        dialect=database.dialect,
        schema_revision=revision,
        tables=tables,
        size=path.stat().st_size,
        sha256=digest,
        verified_at=iso_utc(utcnow()),
    )
    _write_manifest(path, manifest)
    if keep is not None:
        prune(folder, keep)
    return path, manifest


# -- verifying one -----------------------------------------------------------------------------


def _check_file(backup: Path, manifest: Manifest | None, progress: Progress) -> None:
    if not backup.is_file():
        raise BackupFailed("missing", f"no backup at {backup}")
    if manifest is None:
        return
    if backup.stat().st_size != manifest.size:
        raise BackupFailed(
            "damaged",
            f"{backup} is damaged: {backup.stat().st_size} bytes where its manifest says {manifest.size} "
            "(cut short, or changed since)",
        )
    if _sha256(backup, progress) != manifest.sha256:
        raise BackupFailed("damaged", f"{backup} is damaged: its SHA-256 is not its manifest's (changed since)")


def _compare(backup: Path, manifest: Manifest | None, revision: str | None, tables: dict[str, int]) -> None:
    if manifest is None:
        return
    if revision != manifest.schema_revision:
        raise BackupFailed(
            "damaged", f"{backup}: schema revision {revision}, its manifest says {manifest.schema_revision}"
        )
    names = manifest.tables.keys() | tables.keys()
    differing = sorted(name for name in names if manifest.tables.get(name) != tables.get(name))
    if differing:
        raise BackupFailed("damaged", f"{backup}: rows differ from its manifest's in {', '.join(differing)}")


def _recount(url: str, settings: Settings) -> int:
    """Bring a restored copy's schema forward and compare its kept counts with a recount; the
    number of counters that differ."""
    database = Database(url, settings.model_copy(update={"database_url": url}))
    try:
        migrate(database)
        with database.reading() as session:
            kept, counted = statistics.maintained(session), statistics.recount(session)
        return sum(
            statistics.differing(getattr(kept, name), getattr(counted, name))
            for name in ("by_campaign", "by_day", "by_reason")
        )
    finally:
        database.dispose()


def verify(
    settings: Settings,
    backup: Path,
    *,
    into: Path | None = None,
    keep_copy: bool = False,
    progress: Progress = quiet,
) -> Verified:
    """Check a backup whole: its checksum against its manifest, a restore of it into a temporary
    place (a file in `into`, else a temporary directory; on PostgreSQL a scratch database on the
    server of `settings`), its integrity, schema revision and rows against the manifest, and its
    kept counts against a recount (after bringing its schema forward). `BackupFailed` says what
    is wrong. With `keep_copy`, the checked copy stays (for `restore`); else it goes."""
    manifest = read_manifest(backup)
    _check_file(backup, manifest, progress)
    postgres = backup.suffix == SUFFIXES["postgresql"]
    if postgres:
        copy = url = _postgres_copy(settings, backup, progress)
    else:
        folder = Path(tempfile.mkdtemp(prefix=".rollcall-verify-", dir=into))
        copy = str(folder / "rollcall.db")
        url = f"sqlite:///{copy}"
    verified = None
    try:
        if postgres:
            revision, tables = _postgres_facts(url)
        else:
            with _watching(Path(copy), "restore", backup.stat().st_size, progress):
                shutil.copyfile(backup, copy)
            revision, tables = _sqlite_facts(Path(copy))
        _compare(backup, manifest, revision, tables)
        wrong = _recount(url, settings)
        if wrong:
            raise BackupFailed("damaged", f"{backup}: {wrong} kept counts differ from a recount of its calls")
        if manifest is not None:
            _write_manifest(backup, dataclasses.replace(manifest, verified_at=iso_utc(utcnow())))
        verified = Verified(backup, manifest, revision, tables, copy)
        return verified
    finally:
        if verified is None or not keep_copy:
            _discard_copy(copy)


def _postgres_copy(settings: Settings, backup: Path, progress: Progress) -> str:
    """A scratch database on the server of `settings` with the backup restored in it; its URL."""
    if not settings.database_url.startswith("postgresql"):
        raise BackupFailed(
            "error", f"{backup} is a PostgreSQL backup: ROLLCALL_DATABASE_URL must name a PostgreSQL server"
        )
    pg_restore = _tool("pg_restore")
    name = f"{_database_name(settings.database_url)[:40]}_verify_{secrets.token_hex(4)}"
    url = _url_of(settings.database_url, name)
    admin = _admin(settings.database_url)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    try:
        target, environment = _libpq(url)
        progress("restore", 0, None)
        _run([pg_restore, "--exit-on-error", "--no-owner", f"--dbname={target}", str(backup)], environment, "read")
        progress("restore", 1, 1)
    except BaseException:
        _discard_copy(url)
        raise
    return url


def _postgres_facts(url: str) -> tuple[str | None, dict[str, int]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return _postgres_revision(connection), _postgres_tables(connection)
    finally:
        engine.dispose()


def discard(verified: Verified) -> None:
    """Remove the checked copy `verify(keep_copy=True)` left."""
    _discard_copy(verified.copy)


def _discard_copy(copy: str) -> None:
    if copy.startswith("postgresql"):
        admin = _admin(copy)
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{_database_name(copy)}" WITH (FORCE)')
        finally:
            admin.dispose()
    else:
        shutil.rmtree(Path(copy).parent, ignore_errors=True)


# -- in use ------------------------------------------------------------------------------------


class InUse:
    """Whether `rollcall serve` or `rollcall worker` is using a SQLite database: each holds a
    shared lock on `<file>.in-use` while it runs, and a restore takes it exclusively (so a
    service cannot start while a restore runs either)."""

    def __init__(self, path: Path) -> None:
        self._file = open(f"{path}.in-use", "a+b")  # noqa: SIM115 (held while it is used)

    def share(self) -> None:
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupFailed(
                "in_use", "a restore of this database is under way: start again once it is done"
            ) from None

    def exclusive(self) -> None:
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupFailed(
                "in_use",
                "the database is in use by `rollcall serve` or `rollcall worker`: stop them, then restore",
            ) from None

    def close(self) -> None:
        self._file.close()


def hold_in_use(settings: Settings) -> InUse | None:
    """For `rollcall serve` and `rollcall worker`: mark the database as in use while this process
    lives (the lock goes with the process). Nothing to hold on PostgreSQL: a restore counts the
    server's connections to the database."""
    if not settings.database_url.startswith("sqlite"):
        return None
    marker = InUse(_sqlite_path(settings.database_url))
    marker.share()
    return marker


def _postgres_in_use(admin: sa.Engine, name: str) -> None:
    with admin.connect() as connection:
        others = connection.scalar(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"),
            {"name": name},
        )
    if others:
        raise BackupFailed(
            "in_use",
            f"the database is in use ({others} connection(s)): stop `rollcall serve` and `rollcall worker`, "
            "then restore",
        )


# -- restoring one -----------------------------------------------------------------------------


def restore(settings: Settings, backup: Path, *, ledgers: Sequence[Path] = (), progress: Progress = quiet) -> Restored:
    """Put a backup in place of the database of `settings`, refused while the service uses it:
    verify it (a copy beside the database), keep the current database aside (renamed), move the
    copy in, bring its schema forward, and apply the erasures in `ledgers` (the backup's own
    directory's and `ROLLCALL_BACKUP_DIR`'s) that it lacks."""
    stamp = f"{utcnow():%Y%m%d%H%M%S}"
    if settings.database_url.startswith("postgresql"):
        kept_aside, verified = _restore_postgres(settings, backup, stamp, progress)
    else:
        kept_aside, verified = _restore_sqlite(settings, backup, stamp, progress)
    database = Database.for_settings(settings)
    try:
        migrate(database)
        with database.reading() as session:
            now_at = session.scalar(sa.text("SELECT version_num FROM alembic_version"))
        reconciled = reconcile(database, ledgers)
    finally:
        database.dispose()
    return Restored(backup, kept_aside, verified.schema_revision, now_at, reconciled)


def _restore_sqlite(settings: Settings, backup: Path, stamp: str, progress: Progress) -> tuple[str | None, Verified]:
    path = _sqlite_path(settings.database_url).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    marker = InUse(path)
    try:
        marker.exclusive()
        verified = verify(settings, backup, into=path.parent, keep_copy=True, progress=progress)
        copy = Path(verified.copy)
        kept_aside = None
        try:
            if path.exists():
                _fold_log(path)
                aside = path.with_name(f"{path.name}.before-restore-{stamp}")
                os.replace(path, aside)
                kept_aside = str(aside)
                for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    leftover.unlink(missing_ok=True)
            os.replace(copy, path)
            ledger.sync_directory(path.parent)
        finally:
            discard(verified)  # what is left of the copy's directory (the file moved in)
        return kept_aside, verified
    finally:
        marker.close()


def _fold_log(path: Path) -> None:
    """Fold a SQLite file's write-ahead log into it, so the file kept aside is whole by itself."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _restore_postgres(settings: Settings, backup: Path, stamp: str, progress: Progress) -> tuple[str | None, Verified]:
    name = _database_name(settings.database_url)
    admin = _admin(settings.database_url)
    try:
        _postgres_in_use(admin, name)
        verified = verify(settings, backup, keep_copy=True, progress=progress)
        scratch = _database_name(verified.copy)
        aside = f"{name[:40]}_before_restore_{stamp}"
        with admin.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
            )
            try:
                _postgres_in_use(admin, name)
                if exists:
                    connection.exec_driver_sql(f'ALTER DATABASE "{name}" RENAME TO "{aside}"')
                connection.exec_driver_sql(f'ALTER DATABASE "{scratch}" RENAME TO "{name}"')
            except BaseException:
                discard(verified)
                raise
        return (aside if exists else None), verified
    finally:
        admin.dispose()


# -- the erasure ledger ------------------------------------------------------------------------


def reconcile(database: Database, directories: Sequence[str | os.PathLike[str]], *, apply: bool = True) -> Reconciled:
    """Bring the database's erasure ledger and the ledger files in `directories` together: each
    erasure a file holds and the database lacks is applied again (unless `apply` is False), and
    each the database holds is appended to the first directory's file if it lacks it."""
    folders = [Path(folder) for folder in directories]
    in_files: dict[str, list[ledger.Entry]] = {str(folder): ledger.read(folder) for folder in folders}
    with database.reading() as session:
        recorded = ledger.recorded(session)
    applied: list[str] = []
    if apply:
        known = [entry.id for entry in recorded]
        for entry in ledger.missing_from((e for entries in in_files.values() for e in entries), known):
            with database.erasing() as session:
                erased = erase_again(session, entry)
                if erased is not None:
                    audit.record(session, "restore", "member.erased", entry.user_id, erased.model_dump())
                    applied.append(entry.user_id)
        if applied:
            database.checkpoint()
            with database.reading() as session:
                recorded = ledger.recorded(session)
    appended = 0
    if folders:
        first = str(folders[0])
        try:
            appended = ledger.append(first, ledger.missing_from(recorded, (e.id for e in in_files[first])))
        except OSError as error:  # the erasures are in the database; the next try appends them
            log.error("erasure_ledger.append_failed", directory=first, detail=error.strerror)
    if applied or appended:
        log.info("erasure_ledger.reconciled", erased_again=len(applied), appended=appended)
    return Reconciled(applied, appended)
