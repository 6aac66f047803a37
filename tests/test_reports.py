"""Campaign results as staff reach them: `GET /api/v3/reports/calls`, the campaigns' time zone in
the API, the console's Results pages (over HTTP, and in a real browser at laptop and phone
widths), their CSVs, console errors as pages, and `rollcall report`. What the figures are is
proven in tests/core/test_reports.py; here, that every interface shows them and refuses what it
should."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    ARTIFACTS,
    SEED_CALL,
    RunningApp,
    import_all,
    map_seed_campaign,
    sign_in,
    sign_in_over_http,
    store,
)

TODAY = dt.datetime.now(dt.UTC).date()
STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def calls_of_today(database: Database, settings: Settings) -> None:
    """Five calls made today (UTC, before now): to two targets in two states, three members."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    records = [
        ("+15550000001", "completed", 120, "Mickey Mouse", "FL-7"),
        ("+15550000001", "busy", 0, "Mickey Mouse", "FL-7"),
        ("+15550000002", "no-answer", 0, '=HYPERLINK("http://x")', "CA-12"),
        ("+15550000003", "completed", 60, "Mickey Mouse", "FL-7"),
        ("+15550000003", "failed", 0, '=HYPERLINK("http://x")', "CA-12"),
    ]
    for n, (mobile, status, seconds, name, district) in enumerate(records):
        moment = max(now - dt.timedelta(minutes=5 * (len(records) - n)), dt.datetime.combine(TODAY, dt.time(0), dt.UTC))
        store(
            database,
            {
                **SEED_CALL,
                "mobile": mobile,
                "status": status,
                "call_duration": seconds,
                "campaign_target_name": name,
                "campaign_target_district": district,
                "call_timestamp": moment.isoformat(),
            },
        )
    import_all(database, settings)


@pytest.fixture
def staff(app: RunningApp) -> httpx.Client:
    return app.client(headers=STAFF)


def test_the_report_answers_every_grouping_with_its_totals(
    app: RunningApp, staff: httpx.Client, database: Database, settings: Settings
) -> None:
    map_seed_campaign(database)
    calls_of_today(database, settings)
    assert httpx.get(f"{app.url}/api/v3/reports/calls").status_code == 401

    answer = staff.get("/api/v3/reports/calls", params={"filter[campaign_id]": "1"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["meta"]["tz"] == "UTC"
    assert (body["meta"]["from"], body["meta"]["to"]) == (
        (TODAY - dt.timedelta(days=29)).isoformat(),
        TODAY.isoformat(),
    )
    assert len(body["data"]) == 30 and body["data"][-1]["day"] == TODAY.isoformat()
    assert body["meta"]["totals"] == {
        "calls": 5, "completed": 2, "busy": 1, "no_answer": 1, "failed": 1, "canceled": 0, "other": 0,
        "talk_seconds": 180, "callers": 3, "new_members": 3,
    }  # fmt: skip
    assert body["data"][-1] == {"day": TODAY.isoformat(), **body["meta"]["totals"]}

    period = {"filter[date][gte]": TODAY.isoformat(), "filter[date][lte]": TODAY.isoformat()}
    targets = staff.get("/api/v3/reports/calls", params={**period, "group_by": "target"}).json()["data"]
    assert [(t["target_name"], t["target_district"], t["calls"], t["callers"], t["unreachable"]) for t in targets] == [
        ("Mickey Mouse", "FL-7", 3, 2, False),
        ('=HYPERLINK("http://x")', "CA-12", 2, 2, False),
    ]
    states = staff.get("/api/v3/reports/calls", params={**period, "group_by": "state"}).json()["data"]
    assert [(s["state"], s["calls"]) for s in states] == [("FL", 3), ("CA", 2)]
    hours = staff.get("/api/v3/reports/calls", params={**period, "group_by": "hour", "tz": "Asia/Kolkata"}).json()
    assert hours["meta"]["tz"] == "Asia/Kolkata" and len(hours["data"]) == 24
    assert all(row["hour"].endswith("+05:30") for row in hours["data"])
    week = staff.get("/api/v3/reports/calls", params={**period, "group_by": "weekday_hour"}).json()["data"]
    assert len(week) == 168 and sum(row["calls"] for row in week) == 5
    for grouping, key in (("action", "action_id"), ("campaign", "campaign_id"), ("district", "district")):
        rows = staff.get("/api/v3/reports/calls", params={**period, "group_by": grouping}).json()["data"]
        assert sum(row["calls"] for row in rows) == 5 and key in rows[0]
    other = staff.get("/api/v3/reports/calls", params={**period, "filter[callpower_campaign_id]": "2"}).json()
    assert other["meta"]["totals"]["calls"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"filter[date][gte]": "2026-11-02", "filter[date][lte]": "2026-11-01"}, "filter[date][lte]"),
        ({"filter[date][gte]": "2026-02-30"}, "filter[date][gte]"),
        ({"filter[date][gte]": "2010-01-01", "filter[date][lte]": "2026-01-01", "group_by": "hour"}, "group_by"),
        ({"group_by": "month"}, "group_by"),
        ({"filter[campaign_id]": "1,x"}, "filter[campaign_id]"),
    ],
)
def test_a_bad_request_is_a_422_naming_its_parameter(staff: httpx.Client, params: dict[str, str], field: str) -> None:
    answer = staff.get("/api/v3/reports/calls", params=params)
    assert answer.status_code == 422
    assert list(answer.json()["error"]["fields"]) == [field]


def test_a_campaign_has_a_time_zone_its_report_is_in(staff: httpx.Client) -> None:
    made = staff.post("/api/v3/campaigns", json={"internal_title": "Dreamers", "timezone": "America/Chicago"})
    assert made.status_code == 201 and made.json()["data"]["timezone"] == "America/Chicago"
    campaign = made.json()["data"]["id"]
    refused = staff.post("/api/v3/campaigns", json={"internal_title": "Nowhere", "timezone": "Central"})
    assert refused.status_code == 422 and list(refused.json()["error"]["fields"]) == ["timezone"]
    report = staff.get("/api/v3/reports/calls", params={"filter[campaign_id]": str(campaign)}).json()
    assert report["meta"]["tz"] == "America/Chicago"
    changed = staff.patch(f"/api/v3/campaigns/{campaign}", json={"timezone": "Asia/Kathmandu"})
    assert changed.json()["data"]["timezone"] == "Asia/Kathmandu"
    assert staff.patch(f"/api/v3/campaigns/{campaign}", json={"timezone": "UTC+2"}).status_code == 422
    assert staff.patch(f"/api/v3/campaigns/{campaign}", json={"timezone": None}).json()["data"]["timezone"] is None


def test_the_results_page_its_csvs_and_its_time_zone_over_http(
    app: RunningApp, database: Database, settings: Settings
) -> None:
    map_seed_campaign(database)
    calls_of_today(database, settings)
    with app.client() as client:
        sign_in_over_http(client)
        page = client.get("/console/results/1", params={"from": TODAY.isoformat(), "to": TODAY.isoformat()})
        assert page.status_code == 200
        assert re.search(r'id="total-calls">5<', page.text) and re.search(r'id="total-callers">3<', page.text)
        assert "40% of the calls" in page.text  # completed
        assert f"<strong>{TODAY.isoformat()}</strong> to <strong>{TODAY.isoformat()}</strong>" in page.text
        assert page.text.count('<rect class="o-') >= 4  # the stacked bars of today
        assert "<script" not in page.text.split("</head>")[1]  # nothing but the console's own script
        targets_csv = client.get("/console/results.csv", params={"by": "target", "campaign_id": "1"})
        assert targets_csv.headers["content-type"].startswith("text/csv")
        table = list(csv.DictReader(io.StringIO(targets_csv.text)))
        assert [row["target_name"] for row in table] == ["Mickey Mouse", '\'=HYPERLINK("http://x")']  # inert
        assert table[0]["calls"] == "3" and table[0]["unreachable"] == "False"
        days_csv = client.get("/console/results.csv", params={"by": "day", "from": TODAY.isoformat()})
        assert "attachment" in days_csv.headers["content-disposition"]

        by_name = client.get(
            "/console/results/1", params={"from": TODAY.isoformat(), "to": TODAY.isoformat(), "sort_target": "name"}
        )
        names = re.findall(r'<th scope="row">\s*(?:Representative )?([^<]+?)\s*<span class="hint">', by_name.text)
        assert names[:2] == ["=HYPERLINK(&#34;http://x&#34;)", "Mickey Mouse"]

        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        saved = client.post(
            "/console/results/1/timezone",
            data={"csrf_token": csrf, "timezone": "Asia/Kathmandu"},
            follow_redirects=True,
        )
        assert "time zone saved" in saved.text and '<strong id="timezone">Asia/Kathmandu</strong>' in saved.text
        refused = client.post("/console/results/1/timezone", data={"csrf_token": csrf, "timezone": "Kathmandu"})
        assert refused.status_code == 422 and "is not a time zone" in refused.text

        everything = client.get("/console/results")
        assert "Defend Dreamers" in everything.text and 'href="/console/results/1?' in everything.text


def test_console_errors_are_pages_with_the_navigation(app: RunningApp) -> None:
    with app.client() as client:
        sign_in_over_http(client)
        for path, status in (
            ("/console/results/999", 404),
            ("/console/no-such-page", 404),
            ("/console/calls/not-a-number", 422),
            ("/console/results/1?from=yesterday", 422),
        ):
            answer = client.get(path, headers={"Referer": f"{app.url}/console/calls"})
            assert answer.status_code == status, path
            assert answer.headers["content-type"].startswith("text/html"), path
            assert "<nav>" in answer.text and 'href="/console/calls">Back</a>' in answer.text, path
        assert client.get("/api/v3/no-such-thing", headers=STAFF).json()["error"]["code"] == 404  # the API stays JSON


def test_an_office_not_answering_is_flagged_on_the_overview_and_results(
    app: RunningApp, database: Database, settings: Settings
) -> None:
    map_seed_campaign(database)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for n in range(20):
        moment = now - dt.timedelta(minutes=n + 1)
        status = "busy" if n < 15 else "completed"
        store(
            database,
            {**SEED_CALL, "mobile": f"+1555000{n:04d}", "status": status, "call_timestamp": moment.isoformat()},
        )
    import_all(database, settings)
    with app.client() as client:
        sign_in_over_http(client)
        said = "Representative Mickey Mouse (FL-7): 75% of 20 calls in the last 24 h not answered"
        assert said in client.get("/console/").text
        assert said in client.get("/console/results/1").text
    report = httpx.get(f"{app.url}/api/v3/reports/calls", params={"group_by": "target"}, headers=STAFF).json()
    assert report["data"][0]["unreachable"] is True


def test_the_report_command(cli: Callable[..., Any], database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    calls_of_today(database, settings)
    day = TODAY.isoformat()
    table = cli("report", "--campaign-id", "1", "--from", day, "--to", day, "--by", "target").stdout
    assert f"{day} to {day} (UTC): calls 5, completed 2" in table
    assert re.search(r"Mickey Mouse\s+Representative\s+FL-7\s+3\s+2\s+1", table)
    # Today's calls in UTC fall on today or tomorrow in Kathmandu (UTC+5:45), by the hour the test runs.
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    document = json.loads(cli("report", "--from", day, "--to", tomorrow, "--tz", "Asia/Kathmandu", "--json").stdout)
    assert document["meta"]["tz"] == "Asia/Kathmandu" and document["meta"]["totals"]["calls"] == 5
    rows = list(csv.reader(io.StringIO(cli("report", "--by", "target", "--csv").stdout)))
    assert rows[0][:3] == ["target_name", "target_title", "target_district"]
    assert rows[2][0] == '\'=HYPERLINK("http://x")'
    wrong = cli("report", "--tz", "Nowhere", check=False)
    assert wrong.returncode == 1 and "is not a time zone" in wrong.stderr
    made = cli("campaigns", "add", "--title", "Elsewhere", "--timezone", "Europe/Paris").stdout
    assert "added" in made
    assert "Europe/Paris" in cli("campaigns", "list").stdout
    rebuilt = cli("stats", "rebuild").stdout
    assert "0 of their rows were wrong" in rebuilt


@pytest.mark.parametrize(("width", "name"), [(1280, "laptop"), (390, "phone")])
def test_the_results_page_in_a_browser(
    app: RunningApp, page: Any, database: Database, settings: Settings, width: int, name: str
) -> None:
    map_seed_campaign(database)
    calls_of_today(database, settings)
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, app.url)
    page.click("nav >> text=Results")
    page.click("#campaigns-table a:has-text('Defend Dreamers')")
    page.wait_for_selector("#headline")
    assert page.locator("#total-calls").inner_text() == "5"
    chart = page.locator("svg.results-chart")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 150  # drawn, at a readable size
    assert page.locator("svg.results-chart rect[class^=o-]").count() >= 4
    assert page.locator("svg.week-chart rect.shade-5").count() >= 1
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1  # the page itself never scrolls sideways (wide charts and tables scroll in place)
    page.click("a:has-text('Last 7 days')")
    assert f"from={(TODAY - dt.timedelta(days=6)).isoformat()}" in page.url
    assert page.locator("#days-table tbody tr").count() == 7
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-results-{name}-{database.dialect}.png"), full_page=True)
