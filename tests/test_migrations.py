"""Migrations are the only way the schema is made: after them, the models and the database agree."""

from __future__ import annotations

import alembic.command
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import rollcall.models  # noqa: F401  (every table on Base.metadata)
from rollcall.callpower.deliveries import Delivery, store_deliveries
from rollcall.callpower.models import Call
from rollcall.callpower.record import dedup_key_of, record_digest
from rollcall.db import Base, Database, migrations_config
from tests.conftest import SEED_CALL


def test_models_match_the_migrated_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_stored_calls_keep_being_recognised_across_the_dedup_key_migration(database: Database) -> None:
    """0004 computes the keys of stored calls again: a call delivered again after the upgrade is
    stored once; the downgrade gives back the digest-only keys."""
    delivery = Delivery.of_payload(SEED_CALL, raw="{}", content_type="application/json", region="US")
    assert delivery.document is not None
    with database.writing() as session:
        assert store_deliveries(session, [delivery]).new == 1

    def stored_keys() -> list[str]:
        with database.reading() as session:
            return list(session.scalars(sa.select(Call.dedup_key)))

    def to(revision: str) -> None:
        with database.write_engine.begin() as connection:
            command = alembic.command.downgrade if revision != "head" else alembic.command.upgrade
            command(migrations_config(connection), revision)

    to("0003")
    assert stored_keys() == [record_digest(delivery.document)]
    to("head")
    assert stored_keys() == [dedup_key_of(delivery.document)]
    with database.writing() as session:
        assert store_deliveries(session, [delivery]).new == 0
    assert len(stored_keys()) == 1
