"""The call counts kept as calls change state: after intake, imports, failures, retries,
mapping, repairs, revalidation and erasure (and concurrent importers on PostgreSQL) they equal
a fresh recount, and the pages, the API and the metrics show them."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from rollcall.callpower.source import CallPower
from rollcall.calls import deliveries, statistics
from rollcall.calls.models import Call, CallState
from rollcall.calls.queue import Importer
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    break_posts,
    import_all,
    map_seed_campaign,
    mend_posts,
    wait_for,
)

STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY = {"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}


def a_call(n: int, **changes: Any) -> dict[str, Any]:
    return {**SEED_CALL, "mobile": f"+1555123{n:04d}", "call_timestamp": f"2026-11-30T17:00:00.{n:06d}", **changes}


def kept_and_recounted(database: Database) -> tuple[statistics.Counts, statistics.Counts]:
    with database.reading() as session:
        return statistics.maintained(session), statistics.recount(session)


def by_state(counts: statistics.Counts) -> dict[str, int]:
    states = dict.fromkeys([state.value for state in CallState], 0)
    for (_, state), calls in counts.by_day.items():
        states[state] += calls
    return states


def settled(database: Database) -> bool:
    with database.reading() as session:
        return not session.scalar(sa.select(sa.func.count()).where(Call.state.in_(["received", "failed"])))


def test_the_counts_follow_every_change_and_the_pages_show_them(
    app_factory: Callable[..., RunningApp], database: Database
) -> None:
    app = app_factory(import_max_attempts=2)
    map_seed_campaign(database, 1)
    with app.client(headers=KEY) as callpower, app.client(headers=STAFF) as staff:
        for n in range(6):
            assert callpower.post(LEGACY_PATH, json=a_call(n)).status_code == 200
        assert callpower.post(LEGACY_PATH, json=a_call(0)).status_code == 200  # sent again: stored once
        for n in range(10, 13):  # a campaign with no action yet
            assert callpower.post(LEGACY_PATH, json=a_call(n, callpower_campaign_id=2)).status_code == 200
        assert callpower.post(LEGACY_PATH, json=a_call(20, mobile="+266696687")).status_code == 200
        for n in range(30, 34):  # custom targets: no title
            assert callpower.post(LEGACY_PATH, json=a_call(n, campaign_target_title=None)).status_code == 422
        assert callpower.post(LEGACY_PATH, content=b"{not json").status_code == 400  # names no campaign
        bad_duration = a_call(1, callpower_campaign_id=3, call_duration="long", call_timestamp="2026-11-30T18:00:00")
        assert callpower.post(LEGACY_PATH, json=bad_duration).status_code == 422  # the member's, erased below
        wait_for(lambda: settled(database))

        break_posts(database)  # imports fail, then the calls are dead
        for n in range(40, 43):
            assert callpower.post(LEGACY_PATH, json=a_call(n)).status_code == 200
        wait_for(lambda: settled(database))
        mend_posts(database)
        assert staff.post("/api/v3/callpower/calls/retry", params={"filter[state]": "dead"}).json()["data"] == {
            "retried": 3
        }
        actions = staff.get("/api/v3/actions").json()["data"]
        changed = staff.patch(f"/api/v3/actions/{actions[0]['id']}", json={"callpower_campaign_id": 2})
        assert changed.status_code == 200, changed.text  # campaign 2's parked calls are released
        wait_for(lambda: settled(database))
        assert callpower.post(LEGACY_PATH, json=a_call(50)).status_code == 200  # campaign 1 is unmapped now

        rejected = staff.get("/api/v3/callpower/calls", params={"filter[state]": "rejected"}).json()["data"]
        custom = [call for call in rejected if call["callpower_campaign_id"] == 1]
        repaired = staff.post(
            f"/api/v3/callpower/calls/{custom[0]['id']}/repair",
            json={"fields": {"campaign_target_title": "Mayor", "callpower_campaign_id": 2}},
        )
        assert repaired.status_code == 200, repaired.text  # and moved to another campaign
        defaults = {"defaults": {"campaign_target_title": "Custom target"}}
        assert staff.patch("/api/v3/callpower/campaigns/1", json=defaults).status_code == 200
        assert staff.post("/api/v3/callpower/calls/revalidate", params={"filter[callpower_campaign_id]": 1}).json()[
            "data"
        ] == {"revalidated": 3, "duplicates": 0, "still_rejected": 0}
        wait_for(lambda: settled(database))
        member = staff.get("/api/v3/users", params={"filter[mobile]": "+15551230001"}).json()["data"][0]["id"]
        assert staff.delete(f"/api/v3/users/{member}").status_code == 200

        kept, counted = kept_and_recounted(database)
        assert kept == counted
        states = by_state(counted)
        assert states["erased"] >= 1 and states["unmapped"] >= 1 and states["discarded"] == 1
        assert states["rejected"] == 1 and states["imported"] > 0
        assert sum(states.values()) == 6 + 3 + 1 + 4 + 1 + 1 + 3 + 1
        assert states["erased"] == 2  # the member's imported call and rejected one
        [((campaign, day, _), calls)] = counted.by_reason.items()  # the unreadable body's one problem
        assert (campaign, day, calls) == (statistics.NO_CAMPAIGN, dt.datetime.now(dt.UTC).date(), 1)

        # What the API, the metrics and the console show are those counts.
        listed = staff.get("/api/v3/callpower/campaigns").json()["data"]
        shown = {c["callpower_campaign_id"]: c["calls"] for c in listed}
        for campaign, calls in shown.items():
            assert {s: n for s, n in calls.items() if n} == {
                s: n for (c, s), n in counted.by_campaign.items() if c == campaign
            }
        assert all(not c["rejected_because"] for c in listed)  # the only rejected call names no campaign
        metrics = staff.get("/metrics").text
        for state, calls in states.items():
            assert f'rollcall_calls{{state="{state}"}} {float(calls)}' in metrics
        assert "rollcall_import_backlog 0.0" in metrics


def test_rebuild_corrects_counts_that_went_wrong(
    client: httpx.Client, database: Database, cli: Callable[..., Any]
) -> None:
    map_seed_campaign(database, 1)
    for n in range(4):
        assert client.post(LEGACY_PATH, json=a_call(n)).status_code == 200
    assert client.post(LEGACY_PATH, json=a_call(9, campaign_target_title=None)).status_code == 422
    wait_for(lambda: settled(database))
    with database.writing() as session:  # a restore from an older backup, a hand edit
        session.execute(sa.text("UPDATE call_counts_by_day SET calls = calls + 7"))
        session.execute(sa.text("DELETE FROM call_counts_by_campaign WHERE state = 'rejected'"))
    kept, counted = kept_and_recounted(database)
    assert kept != counted

    done = cli("stats", "rebuild")
    assert re.search(r"counted 5 calls; [1-9]\d* counters were wrong", done.stdout), done.stdout
    kept, counted = kept_and_recounted(database)
    assert kept == counted
    assert cli("stats", "rebuild").stdout.splitlines() == [
        "counted 5 calls; 0 counters were wrong and are corrected",
        "recounted the campaign results; 0 of their rows were wrong and are corrected",
    ]


def test_a_rolled_back_savepoint_counts_nothing(database: Database, settings: Settings) -> None:
    """An import batch that fails after its outcomes were recorded (its events cannot be
    written) is imported again call by call: the batch's counts are dropped with its writes,
    and each call that fails is counted as failed."""
    map_seed_campaign(database, 1)
    with database.writing() as session:
        batch = [CallPower("US").check(a_call(n), raw="{}", content_type="application/json") for n in range(3)]
        deliveries.store_deliveries(session, batch, CallPower())
    break_posts(database, "events")
    assert Importer(database, settings, CallPower()).import_batch() == 3
    kept, counted = kept_and_recounted(database)
    assert by_state(counted)["failed"] == 3
    assert kept == counted


def test_concurrent_importers_and_intake_on_postgresql_keep_exact_counts(postgres_url: str) -> None:
    """Four importers and a writer at once, on calls received over three days: the counters are
    contended rows, and each transaction's changes land whole."""
    settings = Settings(database_url=postgres_url, callpower_api_keys=(API_KEY,), admin_tokens=(ADMIN_TOKEN,))
    database = Database.for_settings(settings)
    map_seed_campaign(database, 1)

    def store(first: int, count: int) -> None:
        with database.writing() as session:
            batch = [
                CallPower("US").check(
                    a_call(
                        n, callpower_campaign_id=1 + n % 3, **({"campaign_target_title": None} if n % 17 == 0 else {})
                    ),
                    raw="{}",
                    content_type="application/json",
                )
                for n in range(first, first + count)
            ]
            deliveries.store_deliveries(session, batch, CallPower())

    for start in range(0, 1500, 250):
        store(start, 250)
    with database.writing() as session:  # received on other days
        session.execute(sa.text("UPDATE calls SET received_at = received_at - interval '1 day' WHERE id % 3 = 1"))
        session.execute(sa.text("UPDATE calls SET received_at = received_at - interval '2 days' WHERE id % 3 = 2"))
        statistics.rebuild(session)

    errors: list[BaseException] = []

    def importing() -> None:
        importer = Importer(database, settings.model_copy(update={"import_batch_size": 40}), CallPower())
        try:
            for _ in range(200):
                if not importer.import_batch() and settled(database):
                    return
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)

    def intake() -> None:
        try:
            for start in range(1500, 2500, 20):
                store(start, 20)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=importing) for _ in range(4)] + [threading.Thread(target=intake)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    import_all(database, settings)
    kept, counted = kept_and_recounted(database)
    assert kept == counted
    assert sum(by_state(counted).values()) == 2500
    assert len({day for day, _ in counted.by_day}) == 3
    assert by_state(counted)["unmapped"] > 0 and by_state(counted)["imported"] > 0
    today = dt.datetime.now(dt.UTC).date()
    assert kept.by_day[(today, "rejected")] > 0
    database.dispose()
