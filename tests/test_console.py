"""The operator console in a real headless Chromium against the real app on loopback.

Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it). Without it
these tests are skipped with a message, except in CI (`CI=true`), where that is a failure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import httpx

from rollcall.activity import service as activity
from rollcall.calls import service as operations
from rollcall.db import Database
from tests.helpers import (
    API_KEY,
    ARTIFACTS,
    CONTRACT_PATH,
    SEED_CALL,
    RunningApp,
    break_posts,
    calls_in,
    map_seed_campaign,
    mend_posts,
    sign_in,
    sign_in_over_http,
    store,
    store_and_import,
    wait_for,
)


def send(app: RunningApp, call: dict[str, Any]) -> None:
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        assert client.post(CONTRACT_PATH, json=call).status_code == 200


def test_operator_maps_a_campaign_retries_a_call_downloads_posts_and_signs_out(
    app_factory: Any, page: Any, database: Database
) -> None:
    # Failed calls wait an hour before their automatic retry: the operator's retry is what imports.
    app = app_factory(import_retry_base_seconds=3600)
    ARTIFACTS.mkdir(exist_ok=True)
    backend = database.dialect
    # Two calls for a CallPower campaign nobody has mapped yet.
    send(app, {**SEED_CALL, "callpower_campaign_id": 77, "callpower_campaign_name": "Dreamers_Nov9"})
    send(
        app, {**SEED_CALL, "callpower_campaign_id": 77, "callpower_campaign_name": "Dreamers_Nov9", "call_duration": 9}
    )
    wait_for(lambda: [c.state for c in calls_in(database)] == ["unmapped", "unmapped"])

    sign_in(page, app.url)
    assert page.locator("text=1 CallPower campaign without an action: 2 calls are waiting").is_visible()
    assert page.locator("#states tr.state-unmapped td").first.inner_text() == "2"
    page.screenshot(path=str(ARTIFACTS / f"console-overview-{backend}.png"), full_page=True)

    page.click("a:has-text('Map them')")
    campaign = page.locator("#callpower-77")
    assert "Dreamers_Nov9" in campaign.inner_text()
    assert "unmapped 2" in campaign.inner_text()
    page.screenshot(path=str(ARTIFACTS / f"console-campaigns-{backend}.png"), full_page=True)
    campaign.locator("input[name=campaign_title]").fill("Defend Dreamers")
    campaign.locator("input[name=action_name]").fill("Call Congress")
    campaign.locator("form.map button[type=submit]").click()
    page.wait_for_selector(".flash")
    assert "CallPower campaign 77 now feeds action" in page.locator(".flash").inner_text()
    assert "2 waiting calls sent to the importer" in page.locator(".flash").inner_text()

    def shows_imported() -> bool:
        page.goto(f"{app.url}/console/campaigns")
        return "imported 2" in page.locator("#mapped #callpower-77").inner_text()

    wait_for(shows_imported, timeout=20)

    # The posts of the campaign, and their CSV.
    page.click("nav >> text=Posts")
    rows = page.locator("#posts tbody tr")
    assert rows.count() == 2
    assert "•" in rows.first.locator("td.mobile").inner_text()
    assert rows.first.locator("td.mobile").inner_text().endswith("1234")
    assert "+15551231234" not in page.content()  # lists mask mobiles
    with page.expect_download() as download_info:
        page.click("#csv")
    download = download_info.value
    content = Path(download.path()).read_text()
    table = list(csv.DictReader(io.StringIO(content)))
    assert [row["status"] for row in table] == ["accepted", "accepted"]
    assert {row["campaign_target_name"] for row in table} == {"Mickey Mouse"}
    assert download.suggested_filename.endswith("-posts.csv")

    # A call that fails, then is retried from its page once the fault is mended.
    break_posts(database)
    send(app, {**SEED_CALL, "callpower_campaign_id": 77, "call_duration": 99})
    wait_for(lambda: calls_in(database)[-1].state == "failed")
    failed_id = calls_in(database)[-1].id
    page.goto(f"{app.url}/console/calls?state=failed")
    page.click(f"#calls a:has-text('{failed_id}')")
    assert page.locator("#state").inner_text() == "failed"
    assert "posts broken" in page.content()
    assert "+15551231234" in page.content()  # a call's own page shows the number
    mend_posts(database)
    page.click("button:has-text('Retry this call')")
    page.wait_for_selector(".flash")

    def imported() -> bool:
        page.reload()
        return page.locator("#state").inner_text() == "imported"

    wait_for(imported, timeout=20)
    page.click("dd a[href^='/console/posts/']")
    assert "Call Congress" in page.content()

    # Sign out: the console is closed again.
    page.click("button:has-text('Sign out')")
    page.wait_for_url(re.compile(r".*/console/sign-in"))
    page.goto(f"{app.url}/console/campaigns")
    assert "/console/sign-in" in page.url


def test_a_form_without_the_csrf_token_is_refused(app: RunningApp, page: Any, database: Database) -> None:
    send(app, {**SEED_CALL, "callpower_campaign_id": 78})
    wait_for(lambda: [c.state for c in calls_in(database)] == ["unmapped"])
    sign_in(page, app.url)
    # The browser holds a signed-in session; a forged form from elsewhere carries no token.
    for form in (
        {"campaign_title": "Forged", "action_name": "Forged"},
        {"campaign_title": "Forged", "action_name": "Forged", "csrf_token": "guess"},
    ):
        answer = page.request.post(f"{app.url}/console/campaigns/78/map", form=form, max_redirects=0)
        assert answer.status == 403
        assert "Form refused" in answer.text()
    assert page.request.post(f"{app.url}/console/sign-out", form={}, max_redirects=0).status == 403
    page.goto(f"{app.url}/console/campaigns")
    assert "unmapped 1" in page.locator("#callpower-78").inner_text()  # nothing was mapped


def test_wrong_token_does_not_sign_in(app: RunningApp, page: Any) -> None:
    page.goto(f"{app.url}/console/sign-in")
    page.fill("#token", "not-the-token")
    page.click("button:has-text('Sign in')")
    assert page.locator("text=That token is not a staff token.").is_visible()
    page.goto(f"{app.url}/console/")
    assert "/console/sign-in" in page.url


def test_session_cookie_is_httponly_and_strict(app_factory: Any) -> None:
    app = app_factory()
    behind_a_proxy = app_factory(trusted_proxies=("127.0.0.1",))
    with httpx.Client(base_url=app.url) as client:
        answer = client.get("/console/sign-in")
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback
        # A client's own X-Forwarded-Proto is not believed; a trusted proxy's is.
        forwarded = client.get("/console/sign-in", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in forwarded.headers["set-cookie"]
    with httpx.Client(base_url=behind_a_proxy.url) as client:
        forwarded = client.get("/console/sign-in", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in forwarded.headers["set-cookie"]


def test_operator_repairs_a_rejected_call_and_gives_its_campaign_a_default(
    app: RunningApp, page: Any, database: Database
) -> None:
    map_seed_campaign(database)
    custom = {**SEED_CALL, "campaign_target_title": None, "campaign_target_name": "Mayor Quimby"}
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        for n, changes in enumerate([{}, {}, {"mobile": "123"}]):
            stamp = f"2026-11-30T17:00:00.{n + 1:06d}"
            assert client.post(CONTRACT_PATH, json={**custom, "call_timestamp": stamp, **changes}).status_code == 422
    first, second, third = (call.id for call in calls_in(database))
    sign_in(page, app.url)
    assert "3 calls rejected in the last 7 days" in page.locator("#rejected-week").inner_text()
    assert "The campaign target title field is required." in page.locator("#rejected-week").inner_text()

    # One call repaired from its page: the form shows the fields as received.
    page.goto(f"{app.url}/console/calls/{first}")
    form = page.locator("#repair")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-repair-{database.dialect}.png"), full_page=True)
    assert form.locator("input[name=campaign_target_name]").input_value() == "Mayor Quimby"
    assert form.locator("input[name=campaign_target_title]").input_value() == ""
    form.locator("input[name=campaign_target_title]").fill("Mayor")
    form.locator("button[type=submit]").click()
    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text() == "Repaired: sent to the importer."
    assert 'Target\'s title = "Mayor"' in page.locator("#repairs").inner_text()

    def imported() -> bool:
        page.reload()
        return page.locator("#state").inner_text() == "imported"

    wait_for(imported, timeout=20)
    assert "Mayor Quimby" in page.content()

    # A repair that is still wrong says why, and changes nothing.
    page.goto(f"{app.url}/console/calls/{second}")
    page.locator("#repair input[name=campaign_target_title]").fill("Mayor")
    page.locator("#repair input[name=mobile]").fill("123")
    page.locator("#repair button[type=submit]").click()
    assert "The mobile is not a possible phone number." in page.locator("#repair").inner_text()
    assert page.locator("#state").inner_text() == "rejected"

    # The campaign's page: how many are rejected and why; a default, then applied to them.
    page.goto(f"{app.url}/console/campaigns")
    page.screenshot(path=str(ARTIFACTS / f"console-campaign-rejected-{database.dialect}.png"), full_page=True)
    reasons = page.locator("#rejected-1").inner_text()
    assert "2 rejected" in reasons and "The campaign target title field is required. (2)" in reasons
    assert "The mobile is not a possible phone number. (1)" in reasons
    defaults = page.locator("#callpower-1 form.defaults")
    defaults.locator("input[name=campaign_target_title]").fill("Custom target")
    defaults.locator("button[type=submit]").click()
    page.wait_for_selector(".flash")
    page.locator("#callpower-1 form.revalidate button").click()
    page.wait_for_selector(".flash")
    assert page.locator(".flash").inner_text() == "1 rejected call now pass; 1 still rejected."
    wait_for(lambda: [call.state for call in calls_in(database)] == ["imported", "imported", "rejected"], timeout=20)
    page.goto(f"{app.url}/console/calls/{second}")
    assert "campaign_target_title" in page.locator("#defaulted").inner_text()
    assert page.locator("#refused").inner_text().strip()  # why it was refused stays on its page
    assert third


def test_the_campaigns_page_shows_mapped_campaigns_a_page_at_a_time(app: RunningApp, database: Database) -> None:
    """Every unmapped campaign at the top; the mapped ones 25 at a time, newest id first."""
    with database.writing() as session:
        for n in range(1, 28):
            campaign = activity.create_campaign(session, internal_title=f"Campaign {n}")
            operations.add_action(session, campaign_id=campaign.id, name=f"Call {n}", callpower_campaign_id=n)
    store(database, *({**SEED_CALL, "callpower_campaign_id": n} for n in range(1, 31)))  # 28-30: no action
    with app.client() as client:
        sign_in_over_http(client)
        first = client.get("/console/campaigns").text
        older = re.search(r'href="/console/campaigns\?cursor=([^"]+)">older', first)
        assert older is not None
        second = client.get("/console/campaigns", params={"cursor": older.group(1)}).text

    def mapped(html: str) -> list[int]:
        return [int(n) for n in re.findall(r'<tbody id="callpower-(\d+)">', html)]

    def unmapped(html: str) -> list[int]:
        return [int(n) for n in re.findall(r'<section class="campaign unmapped" id="callpower-(\d+)">', html)]

    assert unmapped(first) == [30, 29, 28]
    assert mapped(first) == list(range(27, 2, -1)) and mapped(second) == [2, 1]
    assert "older →" not in second and "← newer" in second


def test_an_organizer_finds_a_member_by_number_and_reads_names_not_ids(
    app: RunningApp, database: Database, settings: Any
) -> None:
    map_seed_campaign(database)
    for n in (1, 2):  # one import each: the second member is the newer
        store_and_import(
            database, settings, {**SEED_CALL, "mobile": f"+1555123000{n}", "call_timestamp": f"2017-11-07T18:54:1{n}"}
        )
    with app.client() as client:
        sign_in_over_http(client)
        overview = client.get("/console/").text
        assert '<a href="/console/users">Users</a>' in overview
        # The chart has a scale, and its numbers are in a table beside it (no pointer needed).
        assert re.search(r'<text class="axis"[^>]*>2</text>', overview)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        assert re.search(rf'<th scope="row">{today}</th><td class="n">2</td><td class="n">2</td>', overview)
        everyone = client.get("/console/users").text
        assert everyone.index("•••••••0002") < everyone.index("•••••••0001")  # newest first, numbers masked
        found = client.get("/console/users", params={"mobile": "(555) 123-0001"}).text  # any format
        assert "•••••••0001" in found and "0002" not in found
        assert "No member with this number." in client.get("/console/users", params={"mobile": "555 999 0000"}).text
        bad = client.get("/console/users", params={"mobile": "12"})
        assert bad.status_code == 422 and "is not a possible phone number" in bad.text
        user_id = re.search(r'href="/console/users/([0-9a-f]{24})"', found).group(1)  # type: ignore[union-attr]
        member = client.get(f"/console/users/{user_id}").text
        title = activity_title(database)
        assert f"{title} (1)" in member  # the signup's campaign by name
        posts = client.get("/console/posts").text
        assert "Mickey Mouse, Representative (FL-7)" in posts  # name, title and district told apart
        calls = client.get("/console/calls").text
        assert "Mickey Mouse, Representative (FL-7)" in calls


def activity_title(database: Database) -> str:
    with database.reading() as session:
        return activity.get_campaign(session, 1).internal_title


def test_the_overview_suggests_campaign_defaults_only_where_they_would_mend_the_calls(app: RunningApp) -> None:
    key = {"X-DS-CallPower-API-Key": API_KEY}
    with app.client(headers=key) as sender, app.client() as client:
        unreadable = sender.post(CONTRACT_PATH, content=b"{not json", headers={"Content-Type": "application/json"})
        assert unreadable.status_code == 400  # kept, rejected: it names no campaign and no field
        sign_in_over_http(client)
        overview = client.get("/console/").text
        assert 'id="rejected-week"' in overview and "campaign defaults" not in overview
        for n in range(2):
            untitled = {**SEED_CALL, "campaign_target_title": None, "call_timestamp": f"2017-11-07T18:54:0{n}"}
            assert sender.post(CONTRACT_PATH, json=untitled).status_code == 422
        overview = client.get("/console/").text
        assert 'id="rejected-week"' in overview and "campaign defaults</a> for the missing field" in overview
