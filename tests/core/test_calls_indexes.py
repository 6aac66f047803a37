"""The calls table keeps few indexes (every one is written by each call stored and imported); two
are partial, and a query reads a partial index only when its WHERE implies the index's condition.
Each query behind the importer's queue, the parked calls of a campaign and the overview is
explained here on a real database: none may read the calls table whole or sort the rows it read
(the importer's queue can hold a million calls during a replay)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from rollcall.callpower.source import CallPower
from rollcall.calls import repairs, statistics
from rollcall.calls import service as calls
from rollcall.calls.deliveries import store_deliveries
from rollcall.calls.models import NEW, PARKED, RETRYING, CallState
from rollcall.calls.queue import claim_waiting_calls
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import SEED_CALL, import_all, map_seed_campaign, store


@contextmanager
def statements_sent(database: Database) -> Iterator[list[tuple[str, Any]]]:
    sent: list[tuple[str, Any]] = []

    def record(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not many and " calls" in statement and "WHERE" in statement:
            sent.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)


def poor_plans(database: Database, sent: list[tuple[str, Any]]) -> list[str]:
    """The statements whose plan reads the calls table whole, walks it in id order filtering, or
    sorts (PostgreSQL: with sequential scans discouraged, as on a big table, so that a usable
    index is used)."""
    found = []
    with database.engine.connect() as connection:
        cursor = connection.connection.cursor()
        if database.dialect == "sqlite":
            for statement, parameters in sent:
                cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
                whole = "SCAN calls" in plan and "USING" not in plan.split("SCAN calls", 1)[1][:30]
                if whole or "TEMP B-TREE" in plan:
                    found.append(f"{statement}\n  -> {plan}")
        else:
            cursor.execute("SET enable_seqscan = off")
            for statement, parameters in sent:
                cursor.execute(f"EXPLAIN {statement}", parameters)
                plan = " | ".join(str(row[0]) for row in cursor.fetchall())
                walk = "calls_pkey" in plan and "Filter" in plan  # every call in id order, most skipped
                if "Seq Scan on calls" in plan or "Sort" in plan or walk:
                    found.append(f"{statement}\n  -> {plan}")
        cursor.close()
    return found


def test_the_partial_indexes_name_their_states() -> None:
    assert f"state = '{CallState.RECEIVED}'" == NEW
    assert f"state = '{CallState.FAILED}'" == RETRYING
    assert f"state IN ('{CallState.REJECTED}', '{CallState.UNMAPPED}')" == PARKED


def test_the_queue_parked_calls_and_overview_read_an_index(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    store(database, SEED_CALL, {**SEED_CALL, "callpower_campaign_id": 2, "call_duration": 1})
    with database.writing() as session:
        refused = CallPower().check({**SEED_CALL, "mobile": ""}, raw="{}", content_type="application/json")
        store_deliveries(session, [refused], CallPower())
    with statements_sent(database) as sent:
        import_all(database, settings)  # claims the waiting calls; the first unmapped call's event
        repairs.revalidate_calls(database, 1, CallPower())  # the rejected calls of a campaign
        with database.writing() as session:
            assert calls.release_unmapped_calls(session, 2) == 1  # the parked calls of another
        with database.reading() as session:
            overview = statistics.overview(session)  # the backlog's oldest, the last arrival
    assert overview.backlog == 1 and overview.last_received_at is not None
    assert len(sent) >= 5, sent
    assert poor_plans(database, sent) == []


def test_the_importers_queue_is_read_through_its_index_while_a_backlog_is_worked_off(database: Database) -> None:
    """Statistics gathered when every call was new (a history just stored), then most of them
    imported: the planner must still reach the new calls directly, not walk every call in id
    order skipping the imported ones (what PostgreSQL did through `(state, id)` alone)."""
    map_seed_campaign(database)
    records = [{**SEED_CALL, "call_duration": n} for n in range(2000)]
    store(database, *records)
    with database.writing() as session:
        session.execute(sa.text("ANALYZE"))
        session.execute(sa.text("UPDATE calls SET state = 'imported' WHERE id <= 1900"))
    with statements_sent(database) as sent, database.writing() as session:
        assert len(claim_waiting_calls(session, 50)) == 50
    assert poor_plans(database, sent) == []
