"""Migrations are the only way the schema is made: after them, the models and the database agree."""

from __future__ import annotations

import datetime as dt
import hashlib

import alembic.command
import orjson
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import rollcall.models  # noqa: F401  (every table on Base.metadata)
from rollcall.activity import service as activity
from rollcall.callpower.record import dedup_key_of
from rollcall.callpower.source import CallPower
from rollcall.calls.dedup import dedup_secret
from rollcall.calls.deliveries import store_deliveries
from rollcall.calls.models import Call
from rollcall.config import Settings
from rollcall.db import Base, Database, migrations_config
from rollcall.reports import figures
from rollcall.reports.models import ANY_CAMPAIGN
from tests.helpers import SEED_CALL, map_seed_campaign, results_equal_recount, store_and_import


def test_models_match_the_migrated_schema(database: Database) -> None:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_stored_calls_keep_being_recognised_across_the_dedup_key_migrations(database: Database) -> None:
    """0004 put the call's time first, 0009 keys the digest with the database's secret: each
    computes the keys of stored calls again, so a call delivered again after the upgrade is
    stored once; the downgrades give back the keys of before."""
    delivery = CallPower("US").check(SEED_CALL, raw="{}", content_type="application/json")
    assert delivery.document is not None
    with database.writing() as session:
        assert store_deliveries(session, [delivery], CallPower()).new == 1
        secret = dedup_secret(session)
    canonical = orjson.dumps({**delivery.document, "status": "completed"}, option=orjson.OPT_SORT_KEYS)
    plain_digest = hashlib.sha256(canonical).hexdigest()
    time_first = f"{delivery.document['call_timestamp']}/{plain_digest}"[:64]

    def stored_keys() -> list[str]:
        with database.reading() as session:
            return list(session.scalars(sa.select(Call.dedup_key)))

    def to(revision: str) -> None:
        with database.write_engine.begin() as connection:
            command = alembic.command.downgrade if revision != "head" else alembic.command.upgrade
            command(migrations_config(connection), revision)

    keyed = dedup_key_of(delivery.document, secret)
    assert stored_keys() == [keyed] and plain_digest not in keyed
    to("0008")
    assert stored_keys() == [time_first]
    to("0003")
    assert stored_keys() == [plain_digest]
    to("head")
    assert stored_keys() == [keyed]  # the same secret: it stayed in the database
    with database.writing() as session:
        assert store_deliveries(session, [delivery], CallPower()).new == 0
    assert len(stored_keys()) == 1


def test_the_dedup_secret_can_be_given_instead_of_generated(database_url: str) -> None:
    """ROLLCALL_DEDUP_SECRET keys the stores (and what the migration rewrites) instead of the stored one."""
    from rollcall.config import Settings

    database = Database(
        database_url, Settings(database_url=database_url, dedup_secret="given-dedup-secret-0123456789abcdefghij")
    )
    delivery = CallPower("US").check(SEED_CALL, raw="{}", content_type="application/json")
    assert delivery.document is not None
    with database.writing() as session:
        store_deliveries(session, [delivery], CallPower())
    with database.reading() as session:
        assert list(session.scalars(sa.select(Call.dedup_key))) == [
            dedup_key_of(delivery.document, b"given-dedup-secret-0123456789abcdefghij")
        ]
    database.dispose()


def test_the_results_migration_counts_the_posts_already_made(database: Database, settings: Settings) -> None:
    """0012 counts the posts of before (new members, outcomes, targets), as the importer would, and
    0015–0022 their sums by hour and day, their members, every campaign's sums, their last calls
    by quarter, their gaps, their sums by hour and target, their repeats of an office and of a
    weekday-hour (in the campaign's zone: Tuesday 13:00 in New York, where in UTC a call of the
    week before is in the same weekday-hour too)."""
    map_seed_campaign(database)
    with database.writing() as session:
        activity.update_campaign(session, 1, {"timezone": "America/New_York"})
    store_and_import(
        database,
        settings,
        SEED_CALL,  # Tuesday 7 November 2017, 18:54 UTC (13:54 in New York)
        {**SEED_CALL, "status": "busy", "call_timestamp": "2017-11-08 10:00:00", "campaign_target_district": None},
        {**SEED_CALL, "mobile": "+15550000002", "status": "no-answer", "call_duration": 0},
        {**SEED_CALL, "call_timestamp": "2017-11-14 18:10:00"},  # Tuesday 13:10 in New York
        {**SEED_CALL, "call_timestamp": "2017-10-31 18:20:00"},  # Tuesday 14:20 in New York (18:20 UTC)
    )
    with database.reading() as session:
        before = figures.kept(session)
    seventh = figures.quarter_of(dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=dt.UTC))
    assert list(before.week_repeats.values()) == [(1 * 24 + 13, seventh)]  # (the 14th's; the 31st is 14:00)

    quarters = before.sums[0]
    by_campaign = [row[0] for key, row in quarters.items() if key[0] != ANY_CAMPAIGN]
    every_campaign = [row[0] for key, row in quarters.items() if key[0] == ANY_CAMPAIGN]
    assert sum(by_campaign) == sum(every_campaign) == 5
    for revision in ("0011", "0012", "head"):
        with database.write_engine.begin() as connection:
            command = alembic.command.downgrade if revision == "0011" else alembic.command.upgrade
            command(migrations_config(connection), revision)
            if revision == "0012":  # (the time zone 0012 adds, which 0022 keeps weekday-hours in)
                connection.execute(sa.text("UPDATE campaigns SET timezone = 'America/New_York'"))
    with database.reading() as session:
        assert figures.kept(session) == before
    assert results_equal_recount(database)
