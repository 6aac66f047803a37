"""The staff API over real HTTP: each resource, each filter, pages, and the error shapes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rollcall.activity import service as activity
from rollcall.callpower.source import CallPower
from rollcall.calls import deliveries
from rollcall.calls import service as operations
from rollcall.calls.queue import Importer
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    CONTRACT_PATH,
    SEED_CALL,
    RunningApp,
    calls_in,
    store_and_import,
    wait_for,
)

UNAUTHORIZED = {"error": {"code": 401, "message": "Unauthorized."}}


@pytest.fixture
def staff(app: RunningApp) -> Iterator[httpx.Client]:
    with app.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield client


def every_page(client: httpx.Client, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Follow `meta.cursor.next` from the first page to the last."""
    pages = []
    cursor = None
    while True:
        answer = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append(body["data"])
        cursor = body["meta"]["cursor"]["next"]
        if cursor is None:
            return pages


# -- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {API_KEY}"},  # the CallPower key never opens the staff API
        {"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY},
        {"Authorization": f"Basic {base64.b64encode(ADMIN_TOKEN.encode()).decode()}"},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "wrong", "callpower-key-as-bearer", "callpower-key-header", "basic", "empty"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v3/posts"),
        ("GET", "/api/v3/campaigns/1"),
        ("POST", "/api/v3/campaigns"),
        ("PATCH", "/api/v3/actions/1"),
        ("GET", "/api/v3/callpower/campaigns"),
        ("POST", "/api/v3/callpower/calls/retry?filter[state]=failed"),
    ],
)
def test_staff_routes_need_a_staff_token(app: RunningApp, headers: dict, method: str, path: str) -> None:
    with app.client(headers=headers) as client:
        answer = client.request(method, path, json={"internal_title": "x"})
    assert answer.status_code == 401
    assert answer.json() == UNAUTHORIZED
    assert answer.headers["www-authenticate"] == "Bearer"


def test_a_staff_token_never_opens_the_intake(app: RunningApp, database: Database) -> None:
    with app.client() as client:
        answer = client.post(
            CONTRACT_PATH,
            json=SEED_CALL,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-DS-CallPower-API-Key": ADMIN_TOKEN},
        )
    assert answer.status_code == 401
    assert calls_in(database) == []


def test_several_staff_tokens_may_be_configured(app_factory: Any) -> None:
    app = app_factory(admin_tokens=("old-staff-token-0123456789abcdefghijk", "new-staff-token-0123456789abcdefghijk"))
    for token in ("old-staff-token-0123456789abcdefghijk", "new-staff-token-0123456789abcdefghijk"):
        with app.client(headers={"Authorization": f"Bearer {token}"}) as client:
            assert client.get("/api/v3/campaigns").status_code == 200


# -- campaigns and actions --------------------------------------------------------------------


def test_campaign_create_read_change(staff: httpx.Client) -> None:
    made = staff.post("/api/v3/campaigns", json={"internal_title": "  Defend Dreamers ", "cause": "immigration"})
    assert made.status_code == 201
    campaign = made.json()["data"]
    assert campaign["internal_title"] == "Defend Dreamers"
    assert campaign["created_at"].endswith("Z")

    changed = staff.patch(f"/api/v3/campaigns/{campaign['id']}", json={"end_date": "2026-12-31T23:00:00-05:00"})
    assert changed.status_code == 200
    assert changed.json()["data"]["end_date"] == "2027-01-01T04:00:00Z"
    assert changed.json()["data"]["internal_title"] == "Defend Dreamers"

    assert staff.get(f"/api/v3/campaigns/{campaign['id']}").json()["data"]["end_date"] == "2027-01-01T04:00:00Z"
    assert [c["id"] for c in staff.get("/api/v3/campaigns").json()["data"]] == [campaign["id"]]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"internal_title"}),
        ({"internal_title": "   "}, {"internal_title"}),
        ({"internal_title": "x", "colour": "red"}, {"colour"}),
        ({"internal_title": "x", "start_date": "yesterday"}, {"start_date"}),
        ({"internal_title": 5}, {"internal_title"}),
    ],
)
def test_bad_campaign_is_a_422_naming_the_fields(staff: httpx.Client, body: dict, fields: set) -> None:
    answer = staff.post("/api/v3/campaigns", json=body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == (422, "Failed validation.")
    assert set(error["fields"]) == fields


def test_unknown_ids_are_404_in_the_house_shape(staff: httpx.Client) -> None:
    for path in (
        "/api/v3/campaigns/999",
        "/api/v3/actions/999",
        "/api/v3/posts/999",
        "/api/v3/signups/999",
        "/api/v3/users/" + "abc123" * 4,  # the shape of a user id (24 hex characters), of nobody
        "/api/v3/callpower/calls/999",
        "/api/v3/callpower/campaigns/999",
    ):
        answer = staff.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == 404
        assert answer.json()["error"]["message"].startswith("No ")
    assert staff.patch("/api/v3/campaigns/999", json={"cause": "x"}).status_code == 404
    assert staff.post("/api/v3/actions", json={"campaign_id": 999, "name": "x"}).status_code == 404


def test_action_with_a_taken_callpower_campaign_is_409_naming_the_holder(staff: httpx.Client) -> None:
    campaign = staff.post("/api/v3/campaigns", json={"internal_title": "A"}).json()["data"]
    first = staff.post(
        "/api/v3/actions", json={"campaign_id": campaign["id"], "name": "one", "callpower_campaign_id": 7}
    )
    assert first.status_code == 201
    holder = first.json()["data"]["id"]

    second = staff.post(
        "/api/v3/actions", json={"campaign_id": campaign["id"], "name": "two", "callpower_campaign_id": 7}
    )
    other = staff.post("/api/v3/actions", json={"campaign_id": campaign["id"], "name": "three"}).json()["data"]
    patched = staff.patch(f"/api/v3/actions/{other['id']}", json={"callpower_campaign_id": 7})

    for answer in (second, patched):
        assert answer.status_code == 409
        assert answer.json() == {
            "error": {"code": 409, "message": f"CallPower campaign 7 is already mapped to action {holder}."}
        }
    assert [a["name"] for a in staff.get("/api/v3/actions").json()["data"]] == ["three", "one"]


def test_actions_filters(staff: httpx.Client) -> None:
    a = staff.post("/api/v3/campaigns", json={"internal_title": "A"}).json()["data"]["id"]
    b = staff.post("/api/v3/campaigns", json={"internal_title": "B"}).json()["data"]["id"]
    staff.post("/api/v3/actions", json={"campaign_id": a, "name": "a1", "callpower_campaign_id": 11})
    staff.post("/api/v3/actions", json={"campaign_id": a, "name": "a2"})
    staff.post("/api/v3/actions", json={"campaign_id": b, "name": "b1", "callpower_campaign_id": 12})

    def names(**params: str) -> list[str]:
        return [x["name"] for x in staff.get("/api/v3/actions", params=params).json()["data"]]

    assert names(**{"filter[campaign_id]": str(a)}) == ["a2", "a1"]
    assert names(**{"filter[callpower_campaign_id]": "12"}) == ["b1"]
    assert names(**{"filter[callpower_campaign_id]": "11,12"}) == ["b1", "a1"]
    assert names(**{"filter[campaign_id]": str(a), "filter[callpower_campaign_id]": "12"}) == []


def test_mapping_through_the_api_imports_the_waiting_calls(
    client: httpx.Client, staff: httpx.Client, database: Database
) -> None:
    for duration in (10, 20):
        assert (
            client.post(
                CONTRACT_PATH, json={**SEED_CALL, "callpower_campaign_id": 5, "call_duration": duration}
            ).status_code
            == 200
        )
    wait_for(lambda: [c.state for c in calls_in(database)] == ["unmapped", "unmapped"])
    seen = staff.get("/api/v3/callpower/campaigns").json()["data"]
    assert [(c["callpower_campaign_id"], c["calls"]["unmapped"], c["action"]) for c in seen] == [(5, 2, None)]

    campaign = staff.post("/api/v3/campaigns", json={"internal_title": "A"}).json()["data"]
    action = staff.post("/api/v3/actions", json={"campaign_id": campaign["id"], "name": "Call"}).json()["data"]
    mapped = staff.patch(f"/api/v3/actions/{action['id']}", json={"callpower_campaign_id": 5})
    assert mapped.status_code == 200 and mapped.json()["data"]["callpower_campaign_id"] == 5

    wait_for(lambda: [c.state for c in calls_in(database)] == ["imported", "imported"])
    summary = staff.get("/api/v3/callpower/campaigns/5").json()["data"]
    assert summary["calls"]["imported"] == 2 and summary["calls"]["unmapped"] == 0
    assert summary["action"]["id"] == action["id"]
    assert summary["name"] == SEED_CALL["callpower_campaign_name"]
    assert summary["first_call_at"] == summary["last_call_at"] == "2017-11-07T18:54:10.829655Z"
    posts = staff.get("/api/v3/posts", params={"filter[action_id]": action["id"]}).json()["data"]
    assert len(posts) == 2

    # Unmapping leaves what was imported alone.
    unmapped = staff.patch(f"/api/v3/actions/{action['id']}", json={"callpower_campaign_id": None})
    assert unmapped.json()["data"]["callpower_campaign_id"] is None
    assert (
        staff.get("/api/v3/callpower/campaigns", params={"filter[mapped]": "false"}).json()["data"][0]["action"] is None
    )


# -- calls ------------------------------------------------------------------------------------


def test_calls_list_filters_and_what_each_became(client: httpx.Client, staff: httpx.Client, database: Database) -> None:
    with database.writing() as session:
        campaign = activity.create_campaign(session, internal_title="A")
        action = activity.create_action(session, campaign_id=campaign.id, name="Call")
        operations.map_campaign(session, action.id, 1)
    client.post(CONTRACT_PATH, json=SEED_CALL)
    client.post(CONTRACT_PATH, json={**SEED_CALL, "callpower_campaign_id": 2})
    client.post(CONTRACT_PATH, json={**SEED_CALL, "mobile": ""})
    wait_for(lambda: sorted(c.state for c in calls_in(database)) == ["imported", "rejected", "unmapped"])

    everything = staff.get("/api/v3/callpower/calls").json()["data"]
    assert [c["state"] for c in everything] == ["rejected", "unmapped", "imported"]
    imported = staff.get("/api/v3/callpower/calls", params={"filter[state]": "imported"}).json()["data"]
    [call] = imported
    post = staff.get(f"/api/v3/posts/{call['post_id']}").json()["data"]
    assert (post["call_id"], post["northstar_id"], post["signup_id"]) == (
        call["id"],
        call["northstar_id"],
        call["signup_id"],
    )
    assert staff.get(f"/api/v3/users/{call['northstar_id']}").json()["data"]["mobile"] == "+15551231234"
    assert call["record"]["mobile"] == "+15551231234"

    by_campaign = staff.get("/api/v3/callpower/calls", params={"filter[callpower_campaign_id]": "2"}).json()["data"]
    assert [c["state"] for c in by_campaign] == ["unmapped"]
    either = staff.get("/api/v3/callpower/calls", params={"filter[state]": "rejected,unmapped"}).json()["data"]
    assert [c["state"] for c in either] == ["rejected", "unmapped"]
    rejected = either[0]
    assert rejected["errors"] == {"mobile": ["The mobile field is required."]}
    assert staff.get(f"/api/v3/callpower/calls/{rejected['id']}").json()["data"]["raw"].startswith("{")


def test_retry_one_and_by_state(staff: httpx.Client, database: Database, settings: Settings) -> None:
    with database.writing() as session:
        deliveries.store_deliveries(
            session,
            [CallPower("US").check({**SEED_CALL, "call_duration": n}, raw="{}", content_type=None) for n in range(3)],
            CallPower(),
        )
    Importer(database, settings, CallPower()).import_batch()  # unmapped: no action has campaign 1
    ids = [c.id for c in calls_in(database)]

    by_state = staff.post("/api/v3/callpower/calls/retry", params={"filter[state]": "unmapped"})
    assert by_state.json() == {"data": {"retried": 3}}
    # The running service imports them again (still unmapped, so back to unmapped).
    wait_for(lambda: [c.state for c in calls_in(database)] == ["unmapped"] * 3)
    one = staff.post(f"/api/v3/callpower/calls/{ids[0]}/retry")
    assert one.status_code == 200
    assert (one.json()["data"]["id"], one.json()["data"]["state"], one.json()["data"]["attempts"]) == (
        ids[0],
        "received",
        0,
    )
    wait_for(lambda: [c.state for c in calls_in(database)] == ["unmapped"] * 3)

    with database.writing() as session:
        campaign = activity.create_campaign(session, internal_title="A")
        action = activity.create_action(session, campaign_id=campaign.id, name="Call")
        operations.map_campaign(session, action.id, 1)
    wait_for(lambda: {c.state for c in calls_in(database)} == {"imported"})
    refused = staff.post(f"/api/v3/callpower/calls/{ids[0]}/retry")
    assert refused.status_code == 409
    assert (
        refused.json()["error"]["message"]
        == f"Call {ids[0]} is imported; only failed, dead, unmapped calls can be retried."
    )
    assert staff.post("/api/v3/callpower/calls/retry", params={"filter[state]": "imported"}).status_code == 422
    assert staff.post("/api/v3/callpower/calls/retry").status_code == 422


# -- users, signups, posts --------------------------------------------------------------------


def test_users_filter_by_mobile_in_any_format(staff: httpx.Client, database: Database, settings: Settings) -> None:
    with database.writing() as session:
        campaign = activity.create_campaign(session, internal_title="A")
        action = activity.create_action(session, campaign_id=campaign.id, name="Call")
        operations.map_campaign(session, action.id, 1)
    store_and_import(database, settings, SEED_CALL, {**SEED_CALL, "mobile": "+12224567891"})

    for given in ("+15551231234", "5551231234", "(555) 123-1234", "1-555-123-1234"):
        found = staff.get("/api/v3/users", params={"filter[mobile]": given}).json()["data"]
        assert [u["mobile"] for u in found] == ["+15551231234"], given
    both = staff.get("/api/v3/users", params={"filter[mobile]": "5551231234,2224567891"}).json()["data"]
    assert sorted(u["mobile"] for u in both) == ["+12224567891", "+15551231234"]
    # No possible number, so nobody has it.
    unreadable = staff.get("/api/v3/users", params={"filter[mobile]": "12"})  # the same answer as everywhere
    assert unreadable.status_code == 422 and list(unreadable.json()["error"]["fields"]) == ["filter[mobile]"]


def _two_campaigns(database: Database) -> tuple[int, int, int, int]:
    with database.writing() as session:
        a = activity.create_campaign(session, internal_title="A")
        b = activity.create_campaign(session, internal_title="B")
        action_a = activity.create_action(session, campaign_id=a.id, name="Call A")
        action_b = activity.create_action(session, campaign_id=b.id, name="Call B")
        operations.map_campaign(session, action_a.id, 1)
        operations.map_campaign(session, action_b.id, 2)
        return a.id, b.id, action_a.id, action_b.id


def test_signups_filters_and_include_posts(staff: httpx.Client, database: Database, settings: Settings) -> None:
    a, b, _, _ = _two_campaigns(database)
    store_and_import(
        database,
        settings,
        SEED_CALL,
        {**SEED_CALL, "call_duration": 1},
        {**SEED_CALL, "callpower_campaign_id": 2},
        {**SEED_CALL, "mobile": "+12224567891"},
    )
    user = staff.get("/api/v3/users", params={"filter[mobile]": "+15551231234"}).json()["data"][0]["id"]

    in_a = staff.get("/api/v3/signups", params={"filter[campaign_id]": a}).json()["data"]
    assert sorted(s["quantity"] for s in in_a) == [1, 2]
    mine = staff.get("/api/v3/signups", params={"filter[northstar_id]": user}).json()["data"]
    assert sorted((s["campaign_id"], s["quantity"]) for s in mine) == [(a, 2), (b, 1)]
    assert all("posts" not in s or s["posts"] is None for s in mine)

    with_posts = staff.get(
        "/api/v3/signups", params={"filter[northstar_id]": user, "filter[campaign_id]": a, "include": "posts"}
    ).json()["data"]
    [signup] = with_posts
    assert len(signup["posts"]) == signup["quantity"] == 2
    assert {p["signup_id"] for p in signup["posts"]} == {signup["id"]}
    one = staff.get(f"/api/v3/signups/{signup['id']}", params={"include": "posts"}).json()["data"]
    assert [p["id"] for p in one["posts"]] == [p["id"] for p in signup["posts"]]
    assert staff.get("/api/v3/signups", params={"include": "users"}).status_code == 422


def test_a_signup_embeds_a_page_of_its_posts_and_links_to_the_rest(
    staff: httpx.Client, database: Database, settings: Settings
) -> None:
    """However many posts a signup has, the answer is bounded: its newest 20, and a link to the
    posts list that holds the rest, page after page."""
    _two_campaigns(database)
    store_and_import(database, settings, *({**SEED_CALL, "call_duration": n} for n in range(45)))
    [signup] = staff.get("/api/v3/signups", params={"include": "posts"}).json()["data"]
    assert signup["quantity"] == 45 and len(signup["posts"]) == 20
    seen = [post["id"] for post in signup["posts"]]
    page = staff.get(signup["posts_next"]).json()  # the rest: the posts list of this signup, from there on
    while True:
        seen += [post["id"] for post in page["data"]]
        assert {post["signup_id"] for post in page["data"]} == {signup["id"]}
        if not page["meta"]["cursor"]["next"]:
            break
        params = {"filter[signup_id]": signup["id"], "cursor": page["meta"]["cursor"]["next"]}
        page = staff.get("/api/v3/posts", params=params).json()
    assert len(seen) == len(set(seen)) == 45
    assert seen == sorted(seen, reverse=True)
    store_and_import(database, settings, {**SEED_CALL, "mobile": "+12224567891"})
    few = staff.get("/api/v3/signups", params={"include": "posts", "limit": 1}).json()["data"][0]
    assert len(few["posts"]) == 1 and few["posts_next"] is None


def test_posts_each_filter(staff: httpx.Client, database: Database, settings: Settings) -> None:
    a, b, action_a, action_b = _two_campaigns(database)
    store_and_import(
        database,
        settings,
        {**SEED_CALL, "call_timestamp": "2020-01-01T10:00:00Z"},
        {**SEED_CALL, "call_timestamp": "2020-01-02T10:00:00Z", "status": "busy"},
        {**SEED_CALL, "call_timestamp": "2020-01-03T10:00:00Z", "callpower_campaign_id": 2},
        {**SEED_CALL, "call_timestamp": "2020-01-04T10:00:00Z", "mobile": "+12224567891", "callpower_campaign_id": 2},
    )
    user = staff.get("/api/v3/users", params={"filter[mobile]": "+15551231234"}).json()["data"][0]["id"]

    def days(**params: Any) -> list[str]:
        answer = staff.get("/api/v3/posts", params=params)
        assert answer.status_code == 200, answer.text
        return [p["call_timestamp"][:10] for p in answer.json()["data"]]

    assert days() == ["2020-01-04", "2020-01-03", "2020-01-02", "2020-01-01"]
    assert days(**{"filter[campaign_id]": a}) == ["2020-01-02", "2020-01-01"]
    assert days(**{"filter[campaign_id]": f"{a},{b}"}) == days()
    assert days(**{"filter[action_id]": action_b}) == ["2020-01-04", "2020-01-03"]
    assert days(**{"filter[northstar_id]": user}) == ["2020-01-03", "2020-01-02", "2020-01-01"]
    assert days(**{"filter[status]": "incomplete"}) == ["2020-01-02"]
    assert days(**{"filter[status]": "incomplete,accepted"}) == days()
    assert days(**{"filter[type]": "phone-call"}) == days()
    assert days(**{"filter[type]": "photo"}) == []
    assert days(**{"filter[source]": "importer-client"}) == days()
    assert days(**{"filter[call_timestamp][gte]": "2020-01-02T10:00:00Z"}) == ["2020-01-04", "2020-01-03", "2020-01-02"]
    assert days(**{"filter[call_timestamp][lt]": "2020-01-02T10:00:00"}) == ["2020-01-01"]
    assert days(**{"filter[call_timestamp][gte]": "2020-01-02", "filter[call_timestamp][lt]": "2020-01-04"}) == [
        "2020-01-03",
        "2020-01-02",
    ]
    post = staff.get("/api/v3/posts", params={"filter[status]": "incomplete"}).json()["data"][0]
    assert (post["type"], post["action"], post["quantity"]) == ("phone-call", "Call A", 1)
    assert (post["source"], post["source_details"]) == ("importer-client", "CallPower")
    assert post["details"]["status_details"] == "busy"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter[colour]": "red"}, "filter[colour]"),
        ({"sort": "id"}, "sort"),
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"filter[campaign_id]": "x"}, "filter[campaign_id]"),
        ({"filter[campaign_id]": "1,,2"}, "filter[campaign_id]"),
        ({"filter[call_timestamp][gte]": "soon"}, "filter[call_timestamp][gte]"),
    ],
)
def test_bad_parameters_are_422_never_ignored(staff: httpx.Client, params: dict, field: str) -> None:
    answer = staff.get("/api/v3/posts", params=params)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"] == "Failed validation."
    assert field in answer.json()["error"]["fields"]


# -- pages ------------------------------------------------------------------------------------


def test_pages_cover_every_row_once_newest_first(staff: httpx.Client, database: Database, settings: Settings) -> None:
    _two_campaigns(database)
    store_and_import(
        database, settings, *({**SEED_CALL, "call_duration": n, "mobile": f"+1555000{n:04d}"} for n in range(45))
    )
    for path in ("/api/v3/posts", "/api/v3/users", "/api/v3/signups", "/api/v3/callpower/calls"):
        pages = every_page(staff, path, limit=20)
        assert [len(page) for page in pages] == [20, 20, 5], path
        ids = [row["id"] for page in pages for row in page]
        assert len(set(ids)) == 45, path
        if path != "/api/v3/users":
            assert ids == sorted(ids, reverse=True), path


def test_prev_cursor_leads_back(staff: httpx.Client, database: Database, settings: Settings) -> None:
    _two_campaigns(database)
    store_and_import(database, settings, *({**SEED_CALL, "call_duration": n} for n in range(25)))
    first = staff.get("/api/v3/posts", params={"limit": 10}).json()
    second = staff.get("/api/v3/posts", params={"limit": 10, "cursor": first["meta"]["cursor"]["next"]}).json()
    assert first["meta"]["cursor"]["prev"] is None
    back = staff.get("/api/v3/posts", params={"limit": 10, "cursor": second["meta"]["cursor"]["prev"]}).json()
    assert [p["id"] for p in back["data"]] == [p["id"] for p in first["data"]]
    assert back["meta"]["cursor"]["prev"] is None


def test_pages_are_stable_while_rows_are_added(staff: httpx.Client, database: Database, settings: Settings) -> None:
    _two_campaigns(database)
    store_and_import(database, settings, *({**SEED_CALL, "call_duration": n} for n in range(30)))
    before = [p["id"] for page in every_page(staff, "/api/v3/posts", limit=10) for p in page]

    seen: list[int] = []
    cursor = None
    for round_number in range(3):
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = staff.get("/api/v3/posts", params=params).json()
        seen.extend(p["id"] for p in body["data"])
        cursor = body["meta"]["cursor"]["next"]
        # New posts arrive between pages (newest first, so they belong before page one).
        store_and_import(
            database, settings, *({**SEED_CALL, "call_duration": 1000 + round_number * 10 + n} for n in range(7))
        )
    assert seen == before
    assert cursor is None
