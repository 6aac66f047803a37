"""Statements sent straight to the driver (`dialect.execute`, under the intake's commit and the
importer's batches) fail as SQLAlchemy's own would: the same exception types for the code that
catches them, and their values hidden (PostgreSQL's own message may quote a refused row: the
logs' scrubber takes the number out of it, as of any line)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rollcall.calls.models import Call
from rollcall.config import Settings
from rollcall.db import IMPORTER_PAGE_CACHE_MIB, Database, table_of
from rollcall.dialect import execute, insert_rows
from rollcall.logs import scrub

MOBILE = "+15559876543"


def test_a_refused_statement_raises_sqlalchemys_error_without_its_values(database: Database) -> None:
    with pytest.raises(sa.exc.IntegrityError) as raised, database.writing() as session:
        insert_rows(session, table_of(Call), ("raw",), [(f'{{"mobile": "{MOBILE}"}}',)])
    assert "INSERT INTO calls" in str(raised.value)  # the statement is named, not its values
    assert raised.value.params is None and "[parameters" not in str(raised.value)
    assert "5559876543" not in scrub(str(raised.value))
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 0


def test_a_statement_after_the_error_runs_in_a_fresh_transaction(database: Database) -> None:
    with pytest.raises(sa.exc.DBAPIError), database.writing() as session:
        execute(session, "SELECT no_such_column FROM calls")
    with database.writing() as session:  # the connection went back to the pool usable
        assert execute(session, "SELECT count(*) FROM calls").fetchone() == (0,)


def test_an_importing_process_gives_sqlite_a_larger_page_cache(database: Database, settings: Settings) -> None:
    """The writer process and `rollcall worker` open the database with `IMPORTER_PAGE_CACHE_MIB`
    of SQLite page cache per connection; everything else keeps SQLite's default (2 MB)."""
    if database.dialect != "sqlite":
        pytest.skip("a SQLite setting")
    importing = Database.for_settings(settings, page_cache_mib=IMPORTER_PAGE_CACHE_MIB)
    try:
        for db, kib in ((importing, 1024 * IMPORTER_PAGE_CACHE_MIB), (database, 2000)):
            with db.writing() as session:
                assert session.scalar(sa.text("PRAGMA cache_size")) == -kib
    finally:
        importing.dispose()
