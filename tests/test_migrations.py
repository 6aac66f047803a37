"""Migrations are the only way the schema is made: after them, the models and the database agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import rollcall.models  # noqa: F401  (every table on Base.metadata)
from rollcall.db import Base, Database


def test_models_match_the_migrated_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
