"""No call lost to a 422: repairing rejected calls, campaign defaults, revalidation (API and CLI;
the console's forms are in test_console.py)."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.activity.models import Post
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    calls_in,
    count,
    map_seed_campaign,
    serve_process,
    sign_in_over_http,
    wait_for,
)

# What stock CallPower sends for a call to a custom target: it has no title.
CUSTOM_TARGET = {
    **SEED_CALL,
    "call_timestamp": "2026-11-30T17:00:00.000001",
    "campaign_target_title": None,
    "campaign_target_name": "Mayor Quimby",
    "campaign_target_district": None,
}


@pytest.fixture
def staff(app: RunningApp) -> Any:
    with app.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client


@pytest.fixture
def callpower(app: RunningApp) -> Any:
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        yield client


def post_titles(database: Database) -> list[str]:
    with database.reading() as session:
        return [details["campaign_target_title"] for details in session.scalars(sa.select(Post.details))]


def custom_target_call(n: int, **changes: Any) -> dict[str, Any]:
    return {**CUSTOM_TARGET, "call_timestamp": f"2026-11-30T17:00:00.{n:06d}", **changes}


# -- repairing one call -------------------------------------------------------------------------


def test_a_custom_target_call_is_rejected_kept_and_repaired_into_one_post(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    refused = callpower.post(LEGACY_PATH, json=CUSTOM_TARGET)
    assert refused.status_code == 422
    [call] = calls_in(database)
    assert call.state == "rejected"
    problem = staff.get(f"/api/v3/callpower/calls/{call.id}").json()["data"]["problem"]
    assert problem and "campaign target title" in problem.lower()

    repaired = staff.post(
        f"/api/v3/callpower/calls/{call.id}/repair", json={"fields": {"campaign_target_title": "Mayor"}}
    )
    assert repaired.status_code == 200, repaired.text
    document = repaired.json()["data"]
    assert document["state"] in ("received", "imported")
    assert document["record"]["campaign_target_title"] == "Mayor"
    [repair] = document["repairs"]
    assert repair["fields"] == {"campaign_target_title": "Mayor"} and repair["at"].endswith("Z")
    assert json.loads(document["raw"]) == CUSTOM_TARGET  # the body as received, untouched
    wait_for(lambda: post_titles(database) == ["Mayor"])

    shown = staff.get(f"/api/v3/callpower/calls/{call.id}").json()["data"]
    assert shown["state"] == "imported" and shown["repairs"] == [repair] and shown["post_id"]
    # Mended: no problem shown any more (the old one is kept, as history, in `errors`).
    assert shown["problem"] is None and shown["errors"]
    sign_in_over_http(staff)
    listed = staff.get("/console/calls").text
    assert "is required" not in listed
    page = staff.get(f"/console/calls/{call.id}").text
    assert "Was refused because" in page and "Refused because" not in page.replace("Was refused because", "")
    again = staff.post(f"/api/v3/callpower/calls/{call.id}/repair", json={"fields": {"campaign_target_title": "Other"}})
    assert again.status_code == 409
    assert again.json()["error"]["message"] == f"Call {call.id} is imported; only rejected calls can be repaired."
    assert post_titles(database) == ["Mayor"]


@pytest.mark.parametrize(
    ("fields", "problems"),
    [
        ({"campaign_target_title": "   "}, {"campaign_target_title": ["The campaign target title field is required."]}),
        (
            {"campaign_target_title": "Mayor", "mobile": "123"},
            {"mobile": ["The mobile is not a possible phone number."]},
        ),
        ({"campaign_target_title": "Mayor", "target": "x"}, {"fields.target": ["Extra inputs are not permitted"]}),
    ],
    ids=["still-blank", "new-problem", "unknown-field"],
)
def test_an_invalid_repair_is_a_422_and_the_call_stays_rejected(
    callpower: httpx.Client, staff: httpx.Client, database: Database, fields: dict, problems: dict
) -> None:
    callpower.post(LEGACY_PATH, json=CUSTOM_TARGET)
    [call] = calls_in(database)
    answer = staff.post(f"/api/v3/callpower/calls/{call.id}/repair", json={"fields": fields})
    assert answer.status_code == 422
    assert answer.json()["error"]["fields"] == problems
    [after] = calls_in(database)
    assert (after.state, after.repairs, after.record) == ("rejected", None, None)


def test_repair_needs_fields_and_an_existing_call(staff: httpx.Client) -> None:
    assert staff.post("/api/v3/callpower/calls/1/repair", json={"fields": {}}).status_code == 422
    assert staff.post("/api/v3/callpower/calls/99/repair", json={"fields": {"status": "busy"}}).status_code == 404


def test_a_repair_that_equals_a_stored_call_makes_no_second_post(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    stored = {**CUSTOM_TARGET, "campaign_target_title": "Mayor"}
    assert callpower.post(LEGACY_PATH, json=stored).status_code == 200
    assert callpower.post(LEGACY_PATH, json=CUSTOM_TARGET).status_code == 422
    first, rejected = calls_in(database)
    answer = staff.post(
        f"/api/v3/callpower/calls/{rejected.id}/repair", json={"fields": {"campaign_target_title": "Mayor"}}
    )
    assert answer.status_code == 200
    document = answer.json()["data"]
    assert (document["state"], document["duplicate_of"]) == ("duplicate", first.id)
    wait_for(lambda: calls_in(database)[0].state == "imported")
    assert post_titles(database) == ["Mayor"]
    # Delivered again later, the repaired call is recognised too.
    assert callpower.post(LEGACY_PATH, json=stored).status_code == 200
    assert len(calls_in(database)) == 2


def test_a_body_that_could_not_be_read_is_repaired_with_every_field(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    assert callpower.post(LEGACY_PATH, content=b"{not json").status_code == 400
    [call] = calls_in(database)
    partial = staff.post(f"/api/v3/callpower/calls/{call.id}/repair", json={"fields": {"status": "completed"}})
    assert partial.status_code == 422 and "mobile" in partial.json()["error"]["fields"]
    whole = staff.post(f"/api/v3/callpower/calls/{call.id}/repair", json={"fields": SEED_CALL})
    assert whole.status_code == 200
    wait_for(lambda: post_titles(database) == ["Representative"])


def test_repair_through_the_cli(cli: Any, callpower: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    callpower.post(LEGACY_PATH, json=CUSTOM_TARGET)
    [call] = calls_in(database)
    result = cli("calls", "repair", str(call.id), "--set", "campaign_target_title=Mayor", "--set", "status=busy")
    assert result.stdout.strip() == f"call {call.id} repaired: received"
    wait_for(lambda: post_titles(database) == ["Mayor"])
    with database.reading() as session:
        assert session.scalars(sa.select(Post.status)).all() == ["incomplete"]
    second = cli("calls", "repair", str(call.id), "--set", "campaign_target_title=Other", check=False)
    assert second.returncode == 1
    assert second.stderr.strip() == f"error: Call {call.id} is imported; only rejected calls can be repaired."
    invalid = cli("calls", "repair", str(call.id), "--set", "nonsense", check=False)
    assert invalid.returncode == 1 and "--set takes field=value" in invalid.stderr


# -- defaults per CallPower campaign ------------------------------------------------------------


def test_with_a_campaign_default_a_custom_target_call_is_accepted_once(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    assert callpower.post(LEGACY_PATH, json=custom_target_call(1)).status_code == 422  # the campaign is seen
    changed = staff.patch(
        "/api/v3/callpower/campaigns/1", json={"defaults": {"campaign_target_title": "Custom target"}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["defaults"] == {"campaign_target_title": "Custom target"}

    for _ in range(2):  # sent twice: still one call, one post
        answer = callpower.post(LEGACY_PATH, json=custom_target_call(2))
        assert answer.status_code == 200
        assert answer.json() == {"success": {"code": 200, "message": "Received CallPower payload."}}
    wait_for(lambda: post_titles(database) == ["Custom target"])
    stored = calls_in(database)[-1]
    assert stored.defaulted == ["campaign_target_title"]
    assert stored.record["campaign_target_title"] == "Custom target"
    assert json.loads(stored.raw)["campaign_target_title"] is None
    assert len(calls_in(database)) == 2
    # A call that has a title keeps its own.
    assert callpower.post(LEGACY_PATH, json=custom_target_call(3, campaign_target_title="Mayor")).status_code == 200
    wait_for(lambda: sorted(post_titles(database)) == ["Custom target", "Mayor"])
    assert calls_in(database)[-1].defaulted is None

    # Removed, the default no longer completes calls.
    removed = staff.patch("/api/v3/callpower/campaigns/1", json={"defaults": {"campaign_target_title": None}})
    assert removed.json()["data"]["defaults"] == {}
    assert callpower.post(LEGACY_PATH, json=custom_target_call(4)).status_code == 422


@pytest.mark.parametrize(
    ("defaults", "field"),
    [
        ({"mobile": "+15551231234"}, "mobile"),
        ({"callpower_campaign_id": "1"}, "callpower_campaign_id"),
        ({"status": "completed"}, "status"),
        ({"call_timestamp": "2026-01-01T00:00:00"}, "call_timestamp"),
        ({"call_duration": "0"}, "call_duration"),
        ({"campaign_target_title": "  "}, "campaign_target_title"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_only_descriptive_fields_may_have_defaults(
    callpower: httpx.Client, staff: httpx.Client, database: Database, defaults: dict, field: str
) -> None:
    callpower.post(LEGACY_PATH, json=CUSTOM_TARGET)
    answer = staff.patch("/api/v3/callpower/campaigns/1", json={"defaults": defaults})
    assert answer.status_code == 422
    assert list(answer.json()["error"]["fields"]) == [f"defaults.{field}"]
    assert staff.get("/api/v3/callpower/campaigns/1").json()["data"]["defaults"] == {}


def test_defaults_of_a_campaign_never_seen_are_404(staff: httpx.Client) -> None:
    answer = staff.patch("/api/v3/callpower/campaigns/5", json={"defaults": {"campaign_target_title": "Mayor"}})
    assert answer.status_code == 404


def test_defaults_through_the_cli(cli: Any, callpower: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    callpower.post(LEGACY_PATH, json=CUSTOM_TARGET)
    shown = cli("callpower-campaigns", "defaults", "1", "--set", "campaign_target_title=Council member")
    assert shown.stdout.strip() == "campaign_target_title=Council member"
    assert callpower.post(LEGACY_PATH, json=custom_target_call(9)).status_code == 200
    wait_for(lambda: post_titles(database) == ["Council member"])
    refused = cli("callpower-campaigns", "defaults", "1", "--set", "mobile=+15551231234", check=False)
    assert refused.returncode == 1 and "The mobile field cannot have a default" in refused.stderr
    gone = cli("callpower-campaigns", "defaults", "1", "--unset", "campaign_target_title")
    assert gone.stdout.strip() == "CallPower campaign 1 has no defaults"
    listed = json.loads(cli("callpower-campaigns", "list", "--json").stdout)
    assert [(c["callpower_campaign_id"], c["defaults"]) for c in listed] == [(1, {})]


# -- revalidating what was rejected before ------------------------------------------------------


def test_revalidate_turns_earlier_rejected_calls_into_posts_and_leaves_other_errors(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    map_seed_campaign(database, 2)
    for n in range(3):
        assert callpower.post(LEGACY_PATH, json=custom_target_call(n)).status_code == 422
    callpower.post(LEGACY_PATH, json=custom_target_call(3, mobile="123"))  # wrong for another reason
    callpower.post(LEGACY_PATH, json=custom_target_call(4, callpower_campaign_id=2))  # another campaign
    callpower.post(LEGACY_PATH, json=custom_target_call(0))  # the same call twice, both rejected
    staff.patch("/api/v3/callpower/campaigns/1", json={"defaults": {"campaign_target_title": "Custom target"}})

    summary = staff.get("/api/v3/callpower/campaigns/1").json()["data"]
    assert summary["calls"]["rejected"] == 5
    assert summary["rejected_because"] == {
        "The campaign target title field is required.": 5,
        "The mobile is not a possible phone number.": 1,
    }
    answer = staff.post("/api/v3/callpower/calls/revalidate", params={"filter[callpower_campaign_id]": "1"})
    assert answer.status_code == 200
    assert answer.json()["data"] == {"revalidated": 4, "duplicates": 1, "still_rejected": 1}
    wait_for(lambda: post_titles(database) == ["Custom target"] * 3)
    states = [call.state for call in calls_in(database)]
    assert states == ["imported", "imported", "imported", "rejected", "rejected", "duplicate"]
    still = calls_in(database)[3]
    assert still.errors == {"mobile": ["The mobile is not a possible phone number."]}  # the title has its default
    assert staff.get("/api/v3/callpower/campaigns/1").json()["data"]["rejected_because"] == {
        "The mobile is not a possible phone number.": 1
    }
    again = staff.post("/api/v3/callpower/calls/revalidate", params={"filter[callpower_campaign_id]": "1"})
    assert again.json()["data"] == {"revalidated": 0, "duplicates": 0, "still_rejected": 1}
    assert staff.post("/api/v3/callpower/calls/revalidate").status_code == 422  # which campaign?


def test_revalidate_through_the_cli(cli: Any, callpower: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    for n in range(2):
        callpower.post(LEGACY_PATH, json=custom_target_call(n))
    cli("callpower-campaigns", "defaults", "1", "--set", "campaign_target_title=Custom target")
    result = cli("calls", "revalidate", "--callpower-campaign-id", "1")
    assert result.stdout.strip() == "revalidated=2 duplicates=0 still_rejected=0"
    wait_for(lambda: post_titles(database) == ["Custom target"] * 2)


# -- the production path: defaults applied by `rollcall serve`'s writer process -------------------


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_defaults_apply_in_the_writer_process(database_url: str, database: Database, tmp_path: Path) -> None:
    map_seed_campaign(database)
    server, url = serve_process(database_url, tmp_path / "serve.log")
    try:
        with httpx.Client(
            base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
        ) as callpower:
            assert callpower.post(LEGACY_PATH, json=custom_target_call(1)).status_code == 422
            staff = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            defaults = {"defaults": {"campaign_target_title": "Custom target", "campaign_target_district": "NYC"}}
            assert httpx.patch(f"{url}/api/v3/callpower/campaigns/1", json=defaults, headers=staff).status_code == 200
            assert callpower.post(LEGACY_PATH, json=custom_target_call(2)).status_code == 200
        wait_for(lambda: count(database, Post) == 1, timeout=20)
        assert calls_in(database)[-1].defaulted == ["campaign_target_title", "campaign_target_district"]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


def test_a_rejected_row_of_an_imported_csv_file_is_repaired_like_a_body(
    cli: Any, app: RunningApp, database: Database, tmp_path: Path
) -> None:
    map_seed_campaign(database)
    path = tmp_path / "history.csv"
    row = {**SEED_CALL, "campaign_target_title": ""}
    path.write_text(",".join(row) + "\n" + ",".join(str(value) for value in row.values()) + "\n")
    assert cli("calls", "import", str(path)).stdout.strip() == "stored=0 duplicate=0 rejected=1"
    [call] = calls_in(database)
    assert json.loads(call.raw)["campaign_target_name"] == "Mickey Mouse"  # the row's fields, by name
    cli("calls", "repair", str(call.id), "--set", "campaign_target_title=Representative")
    wait_for(lambda: post_titles(database) == ["Representative"])


def test_a_rejected_calls_page_shows_the_number_and_time_as_received(
    callpower: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    map_seed_campaign(database)
    refused = callpower.post(LEGACY_PATH, json={**SEED_CALL, "mobile": "555-01", "call_timestamp": "last Tuesday"})
    assert refused.status_code == 422
    [call] = calls_in(database)
    sign_in_over_http(staff)
    page = staff.get(f"/console/calls/{call.id}").text
    assert re.search(r'id="call-mobile">555-01 <span class="note">\(as received', page)
    assert re.search(r'id="call-made">last Tuesday <span class="note">\(as received', page)
    # The repair form's fields in words, the API's name beside each.
    assert 'Number the caller dialed <code class="field">number_dialed_into</code>' in page
