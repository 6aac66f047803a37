"""Campaign results through the service, on a real database: every figure of every grouping
equals a count made here from the calls themselves (in the time zone, with Python's zoneinfo),
across daylight-saving changes both ways and in zones whose offset is not whole hours; and the
figures kept stay equal to a recount through late mappings, duplicates, erasure and rebuilds."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import threading
import zoneinfo
from dataclasses import dataclass
from typing import Any

import hypothesis
import hypothesis.strategies as st
import pytest
import sqlalchemy as sa

from rollcall.activity import service as activity
from rollcall.callpower.source import CallPower
from rollcall.calls import results
from rollcall.calls import service as operations
from rollcall.calls.models import Call
from rollcall.calls.queue import Importer
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.errors import InvalidInput
from rollcall.members import service as members
from rollcall.reports import service
from rollcall.reports.models import ReportCall
from rollcall.reports.service import Asked, Grouping, Scope
from tests.helpers import SEED_CALL, import_all, map_seed_campaign, results_equal_recount, store

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Made:
    """A call as the test makes it, and what it should count for."""

    mobile: str
    at: dt.datetime  # UTC
    status: str = "completed"
    seconds: int = 30
    name: str | None = "Mickey Mouse"
    title: str | None = "Representative"
    district: str | None = "FL-7"
    callpower_campaign_id: int = 1

    def record(self) -> dict[str, Any]:
        return {
            **SEED_CALL,
            "mobile": self.mobile,
            "call_timestamp": self.at.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "status": self.status,
            "call_duration": self.seconds,
            "campaign_target_name": self.name,
            "campaign_target_title": self.title,
            "campaign_target_district": self.district,
            "callpower_campaign_id": self.callpower_campaign_id,
        }


def make(database: Database, settings: Settings, *calls: Made) -> None:
    """Store the calls in order, one delivery each (the member of a mobile is made by their first)."""
    for call in calls:
        store(database, call.record())
    import_all(database, settings)


def ask(database: Database, grouping: Grouping, first: dt.date, last: dt.date, tz: str, **scope: Any) -> Any:
    with database.reading() as session:
        return service.answer(
            session,
            Asked(Scope(**scope), first, last, tz, grouping),
            default_tz="UTC",
            now=NOW,
            share=0.5,
            at_least=20,
        )


_OUTCOME = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "canceled",
}


def expected(
    calls: list[Made], key: Any, first: dt.date, last: dt.date, tz: str, among: Any = lambda call: True
) -> dict[Any, dict[str, int]]:
    """The figures counted here: per `key(local time)` over the calls (`among` them) made on
    local dates first..last (the first call of a mobile, in any campaign, made its member)."""
    zone = zoneinfo.ZoneInfo(tz)
    seen: set[str] = set()
    rows: dict[Any, dict[str, Any]] = {}
    for call in calls:
        new = call.mobile not in seen
        seen.add(call.mobile)
        local = call.at.astimezone(zone)
        if not first <= local.date() <= last or not among(call):
            continue
        row = rows.setdefault(key(local), collections.defaultdict(int, callers=set()))
        row["calls"] += 1
        row[_OUTCOME.get(call.status, "other")] += 1
        row["talk_seconds"] += call.seconds
        row["new_members"] += new
        row["callers"].add(call.mobile)
    return {
        k: {**{n: v for n, v in r.items() if n != "callers"}, "callers": len(r["callers"])} for k, r in rows.items()
    }


def figures(row: dict[str, Any]) -> dict[str, int]:
    """A row's nonzero figures (as `expected` has them)."""
    names = ("calls", "completed", "busy", "no_answer", "failed", "canceled", "other", "talk_seconds", "callers")
    return {name: row[name] for name in (*names, "new_members") if row[name]}


def nonzero(found: dict[Any, dict[str, int]]) -> dict[Any, dict[str, int]]:
    return {key: {n: v for n, v in row.items() if v} for key, row in found.items()}


def hour_key(local: dt.datetime) -> str:
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%dT%H}:00{offset[:3]}:{offset[3:]}"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def test_every_figure_by_day_target_state_and_in_total(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    calls = [
        Made("+15550000001", at("2026-11-18T14:00:00Z"), seconds=40),
        Made("+15550000001", at("2026-11-18T14:05:00Z"), status="busy", seconds=0),
        Made("+15550000002", at("2026-11-18T23:59:00Z"), status="no-answer", seconds=0, district="FL"),
        Made("+15550000003", at("2026-11-19T00:00:00Z"), status="failed", seconds=0, name="Minnie", district="CA-12"),
        Made("+15550000002", at("2026-11-19T09:00:00Z"), status="canceled", seconds=0, district=None, name=None),
        Made("+15550000004", at("2026-11-19T10:00:00Z"), status="ringing", seconds=5, name="Custom", district=None),
        Made("+15550000005", at("2026-11-12T10:00:00Z")),  # before the period
    ]
    make(database, settings, *calls)
    first, last = dt.date(2026, 11, 17), dt.date(2026, 11, 19)

    by_day = ask(database, Grouping.DAY, first, last, "UTC")
    assert [row["day"] for row in by_day.rows] == ["2026-11-17", "2026-11-18", "2026-11-19"]
    assert by_day.rows[0]["calls"] == 0
    found = {row["day"]: figures(row) for row in by_day.rows if row["calls"]}
    assert found == nonzero(expected(calls, lambda local: local.date().isoformat(), first, last, "UTC"))
    assert found["2026-11-18"] == {
        "calls": 3, "completed": 1, "busy": 1, "no_answer": 1, "talk_seconds": 40, "callers": 2, "new_members": 2
    }  # fmt: skip
    assert figures(by_day.totals) == {
        "calls": 6, "completed": 1, "busy": 1, "no_answer": 1, "failed": 1, "canceled": 1, "other": 1,
        "talk_seconds": 45, "callers": 4, "new_members": 4,
    }  # fmt: skip
    assert sum(by_day.totals[n] for n in ("completed", "busy", "no_answer", "failed", "canceled", "other")) == 6

    by_target = ask(database, Grouping.TARGET, first, last, "UTC")
    assert [(r["target_name"], r["target_title"], r["target_district"], r["calls"]) for r in by_target.rows] == [
        ("Mickey Mouse", "Representative", "FL-7", 2),  # most calls first, then by key
        ("Custom", "Representative", None, 1),
        ("Mickey Mouse", "Representative", "FL", 1),
        ("Minnie", "Representative", "CA-12", 1),
        (None, "Representative", None, 1),  # (blanks last)
    ]
    assert all(row["unreachable"] is False for row in by_target.rows)
    by_state = ask(database, Grouping.STATE, first, last, "UTC")
    assert [(r["state"], r["calls"], r["callers"]) for r in by_state.rows] == [("FL", 3, 2), (None, 2, 2), ("CA", 1, 1)]
    by_district = ask(database, Grouping.DISTRICT, first, last, "UTC")
    assert [(r["district"], r["calls"]) for r in by_district.rows] == [("FL-7", 2), (None, 2), ("CA-12", 1), ("FL", 1)]
    with database.reading() as session:  # the console's states and districts: summed from the targets
        targets = service.grouped(session, Scope(), by_day.period, Grouping.TARGET, callers=False)
        states, districts = service.places(targets)
    without_callers = [{**row, "callers": None} for row in by_state.rows]
    assert states == without_callers
    assert districts == [{**row, "callers": None} for row in by_district.rows]
    by_campaign = ask(database, Grouping.CAMPAIGN, first, last, "UTC")
    assert [(r["campaign_id"], r["calls"], r["callers"]) for r in by_campaign.rows] == [(1, 6, 4)]
    assert by_campaign.document()["meta"] == {
        "tz": "UTC", "from": "2026-11-17", "to": "2026-11-19", "group_by": "campaign", "totals": by_campaign.totals
    }  # fmt: skip


def test_new_members_are_counted_where_their_first_call_is(database: Database, settings: Settings) -> None:
    """A member's first call, in any campaign, makes them new there and nowhere else."""
    map_seed_campaign(database, 1)
    map_seed_campaign(database, 2)
    calls = [
        Made("+15550000001", at("2026-11-18T10:00:00Z"), callpower_campaign_id=1),
        Made("+15550000001", at("2026-11-19T10:00:00Z"), callpower_campaign_id=2),
        Made("+15550000002", at("2026-11-19T11:00:00Z"), callpower_campaign_id=2),
    ]
    make(database, settings, *calls)
    day = dt.date(2026, 11, 19)
    second = ask(database, Grouping.DAY, day, day, "UTC", campaign_ids=(2,))
    assert (second.totals["callers"], second.totals["new_members"]) == (2, 1)
    both = ask(database, Grouping.CAMPAIGN, dt.date(2026, 11, 18), day, "UTC")
    assert [(r["campaign_id"], r["callers"], r["new_members"]) for r in both.rows] == [(2, 2, 1), (1, 1, 1)]
    assert (both.totals["callers"], both.totals["new_members"]) == (2, 2)
    by_action = ask(database, Grouping.ACTION, dt.date(2026, 11, 18), day, "UTC", action_ids=(1,))
    assert [(r["action_id"], r["calls"]) for r in by_action.rows] == [(1, 1)]
    by_source = ask(database, Grouping.DAY, day, day, "UTC", source_campaign_ids=(1,))
    assert by_source.totals["calls"] == 0


@pytest.mark.parametrize(
    ("tz", "moments"),
    [
        # The clocks go forward at 2:00 on 8 March 2026 (a 23-hour day) and back at 2:00 on
        # 1 November (a 25-hour day: 1:00-2:00 happens twice, at -04:00 and at -05:00).
        ("America/New_York", ["2026-03-08T06:30Z", "2026-03-08T07:30Z", "2026-11-01T05:30Z", "2026-11-01T06:30Z"]),
        # +5:30: local midnight is 18:30 UTC.
        ("Asia/Kolkata", ["2026-11-18T18:29Z", "2026-11-18T18:30Z", "2026-11-19T03:44Z"]),
        # +5:45: local midnight is 18:15 UTC.
        ("Asia/Kathmandu", ["2026-11-18T18:14Z", "2026-11-18T18:15Z", "2026-11-18T19:00Z"]),
        # +10:30, and +11:00 in summer: the clocks move by half an hour (2:00 -> 2:30 on 4 October
        # 2026; 2:00 -> 1:30 on 5 April 2026, when 1:30-2:00 happens twice).
        ("Australia/Lord_Howe", ["2026-04-04T14:40Z", "2026-04-04T15:10Z", "2026-10-03T15:20Z", "2026-10-03T15:35Z"]),
    ],
)
def test_days_and_hours_in_a_time_zone(database: Database, settings: Settings, tz: str, moments: list[str]) -> None:
    map_seed_campaign(database)
    calls = [Made(f"+1555000{n:04d}", at(moment)) for n, moment in enumerate(moments)]
    make(database, settings, *calls)
    zone = zoneinfo.ZoneInfo(tz)
    local_days = sorted({call.at.astimezone(zone).date() for call in calls})
    first, last = local_days[0] - dt.timedelta(days=1), local_days[-1] + dt.timedelta(days=1)

    by_day = ask(database, Grouping.DAY, first, last, tz)
    assert by_day.period.name == tz
    assert {r["day"]: figures(r) for r in by_day.rows if r["calls"]} == nonzero(
        expected(calls, lambda local: local.date().isoformat(), first, last, tz)
    )
    by_hour = ask(database, Grouping.HOUR, first, last, tz)
    hours = [row["hour"] for row in by_hour.rows]
    assert len(hours) == len(set(hours))
    every = _every_local_hour(first, last, zone)
    assert hours == every  # each local hour once, a repeated one twice (its offsets differ)
    assert {r["hour"]: figures(r) for r in by_hour.rows if r["calls"]} == nonzero(
        expected(calls, hour_key, first, last, tz)
    )
    by_week = ask(database, Grouping.WEEKDAY_HOUR, first, last, tz)
    assert len(by_week.rows) == 7 * 24
    assert {(r["weekday"], r["hour"]): figures(r) for r in by_week.rows if r["calls"]} == nonzero(
        expected(calls, lambda local: (local.weekday(), local.hour), first, last, tz)
    )


def _every_local_hour(first: dt.date, last: dt.date, zone: zoneinfo.ZoneInfo) -> list[str]:
    """Each local hour of the days, walking UTC a minute at a time (slow and obviously right)."""
    moment = dt.datetime.combine(first, dt.time(0), tzinfo=zone).astimezone(UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(UTC)
    found: list[str] = []
    while moment < end:
        key = hour_key(moment.astimezone(zone))
        if not found or found[-1] != key:
            found.append(key)
        moment += dt.timedelta(minutes=15)
    return found


def test_a_day_in_new_york_when_the_clocks_change(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    make(
        database, settings, Made("+15550000001", at("2026-11-01T05:30Z")), Made("+15550000002", at("2026-11-01T06:30Z"))
    )
    day = dt.date(2026, 11, 1)
    by_hour = ask(database, Grouping.HOUR, day, day, "America/New_York")
    assert len(by_hour.rows) == 25
    assert [(r["hour"], r["calls"]) for r in by_hour.rows[1:3]] == [
        ("2026-11-01T01:00-04:00", 1),
        ("2026-11-01T01:00-05:00", 1),
    ]
    spring = dt.date(2026, 3, 8)
    hours = [r["hour"] for r in ask(database, Grouping.HOUR, spring, spring, "America/New_York").rows]
    assert len(hours) == 23 and hours[1:3] == ["2026-03-08T01:00-05:00", "2026-03-08T03:00-04:00"]


ZONES = ["UTC", "America/New_York", "America/St_Johns", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]


TARGETS = [
    ("Mickey Mouse", "Representative", "FL-7"),
    ("Minnie Mouse", "Senator", "FL"),
    ("Office line", "Custom", None),
]


@hypothesis.settings(max_examples=15, deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow])
@hypothesis.given(
    tz=st.sampled_from(ZONES),
    calls=st.lists(
        st.tuples(
            st.integers(1, 6),  # member
            st.integers(0, 60 * 24 * 16),  # minutes after the start (some a week apart)
            st.sampled_from(["completed", "busy", "no-answer", "failed", "canceled", "unknown"]),
            st.integers(0, 600),
            st.integers(0, len(TARGETS) - 1),
        ),
        min_size=1,
        max_size=25,
        unique_by=lambda call: (call[0], call[1]),  # (a member's two calls in one minute would be one call)
    ),
)
def test_any_calls_in_any_zone_count_as_zoneinfo_says(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Any, tz: str, calls: list[tuple[int, int, str, int, int]]
) -> None:
    """Hypothesis draws calls around both daylight-saving changes of 2026; the days, hours,
    weekday-hours, targets, states and totals of the report equal what zoneinfo says of each call
    (SQLite: a fresh file each), in the campaign's own zone. Periods begin and end among the
    calls: the first ends before the last calls, the second runs past them (its distinct callers
    are counted from the members' last calls); targets are read from whole UTC days and the period's edges, which the
    zone puts inside UTC days. Each over every campaign and over the campaign: their sums are
    kept apart."""
    import shutil

    path = tmp_path_factory.mktemp("reports") / "rollcall.db"
    shutil.copyfile(sqlite_template, path)
    settings = Settings(database_url=f"sqlite:///{path}", callpower_api_keys=("k" * 32,), admin_tokens=("t" * 32,))
    database = Database.for_settings(settings)
    try:
        map_seed_campaign(database)
        everything = [
            Made(f"+1555000{member:04d}", start + dt.timedelta(minutes=minutes), status, seconds, *TARGETS[target])
            for start in (dt.datetime(2026, 3, 25, tzinfo=UTC), dt.datetime(2026, 10, 25, tzinfo=UTC))
            for member, minutes, status, seconds, target in calls
        ]
        # The campaign's zone (its weekday-hours kept in it) is set between the two halves: the
        # first's counted again in it, the second's as they are made.
        make(database, settings, *everything[: len(calls)])
        with database.writing() as session:
            activity.update_campaign(session, 1, {"timezone": tz})
        make(database, settings, *everything[len(calls) :])
        # The first period ends before some calls (and begins after others); the second begins
        # among the calls and runs past the last.
        periods = ((dt.date(2026, 3, 28), dt.date(2026, 4, 6)), (dt.date(2026, 10, 28), dt.date(2026, 11, 12)))
        # Every campaign (read from the sums kept for all of them at once) and the campaign.
        for (first, last), scope in itertools.product(periods, ({}, {"campaign_ids": (1,)})):
            for grouping, key in (
                (Grouping.DAY, lambda local: local.date().isoformat()),
                (Grouping.HOUR, hour_key),
                (Grouping.WEEKDAY_HOUR, lambda local: (local.weekday(), local.hour)),
                (Grouping.TARGET, None),
                (Grouping.STATE, None),
                (Grouping.DISTRICT, None),
            ):
                found = ask(database, grouping, first, last, tz, **scope)
                if grouping == Grouping.WEEKDAY_HOUR:
                    got = {(r["weekday"], r["hour"]): figures(r) for r in found.rows if r["calls"]}
                elif grouping == Grouping.TARGET:
                    got = {(r["target_name"], r["target_title"], r["target_district"]): figures(r) for r in found.rows}
                else:
                    got = {r[grouping.value]: figures(r) for r in found.rows if r["calls"]}
                if key is None:
                    want = expected_by_target(everything, grouping, first, last, tz)
                else:
                    want = expected(everything, key, first, last, tz)
                assert got == nonzero(want), (grouping, first, scope)
            assert figures(found.totals) == nonzero(expected(everything, lambda _: (), first, last, tz)).get((), {})
    finally:
        database.dispose()


def expected_by_target(
    calls: list[Made], grouping: Grouping, first: dt.date, last: dt.date, tz: str
) -> dict[Any, dict[str, int]]:
    """`expected` by target (name, title, district), by state (from the district) or by district."""

    def key(call: Made) -> Any:
        if grouping == Grouping.TARGET:
            return (call.name, call.title, call.district)
        if grouping == Grouping.DISTRICT:
            return call.district
        return (call.district or "").split("-")[0] or None

    rows: dict[Any, dict[str, int]] = {}
    for wanted in {key(call) for call in calls}:
        found = expected(calls, lambda _, w=wanted: w, first, last, tz, among=lambda call, w=wanted: key(call) == w)
        rows.update(found)
    return rows


def test_figures_stay_exact_through_late_mapping_duplicates_erasure_and_rebuild(
    database: Database, settings: Settings
) -> None:
    calls = [
        Made("+15550000001", at("2026-11-10T10:00:00Z")),
        Made("+15550000002", at("2026-11-11T10:00:00Z"), status="busy"),
        Made("+15550000001", at("2026-11-12T10:00:00Z"), status="no-answer"),
    ]
    make(database, settings, *calls)  # no action yet: the calls wait, nothing counts
    first, last = dt.date(2026, 11, 10), dt.date(2026, 11, 12)
    assert ask(database, Grouping.DAY, first, last, "UTC").totals["calls"] == 0
    map_seed_campaign(database)  # mapped days later: the calls count on the days they were made
    import_all(database, settings)
    by_day = ask(database, Grouping.DAY, first, last, "UTC")
    assert [r["calls"] for r in by_day.rows] == [1, 1, 1]
    assert results_equal_recount(database)

    make(database, settings, calls[1])  # sent again: the same call, counted once
    assert ask(database, Grouping.DAY, first, last, "UTC").totals["calls"] == 3

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    after = ask(database, Grouping.DAY, first, last, "UTC")
    assert [r["calls"] for r in after.rows] == [0, 1, 0]
    assert (after.totals["callers"], after.totals["new_members"]) == (1, 1)
    assert results_equal_recount(database)
    with database.reading() as session:
        assert (
            session.scalar(sa.select(sa.func.count()).select_from(ReportCall).where(ReportCall.user_id == member)) == 0
        )

    with database.writing() as session:  # rows tampered with are found and corrected
        session.execute(sa.update(ReportCall).values(calls=ReportCall.calls + 5))
    with database.writing() as session:
        assert results.rebuild(session, CallPower()) == 1
    assert results_equal_recount(database)
    with database.writing() as session:
        assert results.rebuild(session, CallPower()) == 0


def test_callers_of_every_campaign_count_a_member_once(database: Database, settings: Settings) -> None:
    """Over every campaign, a member who called in two is one caller, and one whose last call in
    any campaign is before the period is none, for a period that runs past the last calls (their
    last calls in any campaign tell it) and one that ends before them; an erasure takes the
    member out of both."""
    map_seed_campaign(database, 1)
    map_seed_campaign(database, 2)
    calls = [
        Made("+15550000001", at("2026-11-13T10:00:00Z")),  # both campaigns, both in the period
        Made("+15550000001", at("2026-11-15T10:00:00Z"), callpower_campaign_id=2),
        Made("+15550000002", at("2026-11-05T10:00:00Z"), callpower_campaign_id=2),  # before it
        Made("+15550000003", at("2026-11-16T10:00:00Z")),
        Made("+15550000004", at("2026-11-08T10:00:00Z"), callpower_campaign_id=2),  # before, then in it
        Made("+15550000004", at("2026-11-14T10:00:00Z")),
        Made("+15550000005", at("2026-11-19T10:00:00Z"), callpower_campaign_id=2),  # after the first period
    ]
    make(database, settings, *calls)

    def callers(first: dt.date, last: dt.date) -> tuple[int, list[tuple[int, int]]]:
        by_campaign = ask(database, Grouping.CAMPAIGN, first, last, "UTC")
        return by_campaign.totals["callers"], sorted((r["campaign_id"], r["callers"]) for r in by_campaign.rows)

    for first, last in ((dt.date(2026, 11, 12), dt.date(2026, 11, 20)), (dt.date(2026, 11, 12), dt.date(2026, 11, 17))):
        want = expected(calls, lambda _: (), first, last, "UTC")[()]["callers"]
        assert callers(first, last)[0] == want
    assert callers(dt.date(2026, 11, 12), dt.date(2026, 11, 20)) == (4, [(1, 3), (2, 2)])

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    assert callers(dt.date(2026, 11, 12), dt.date(2026, 11, 20)) == (3, [(1, 2), (2, 1)])
    assert results_equal_recount(database)


def test_a_member_who_calls_again_later_is_one_caller(database: Database, settings: Settings) -> None:
    """The callers of a period that runs to the last call are summed from how many members' last
    call is in each quarter: a member's later call, imported in a later batch, moves them from
    the quarter of their earlier one (counted there no more), in the campaign and in any."""
    map_seed_campaign(database)
    make(database, settings, Made("+15550000001", at("2026-11-10T10:00:00Z")))
    make(database, settings, Made("+15550000002", at("2026-11-11T10:00:00Z")))
    make(database, settings, Made("+15550000001", at("2026-11-12T10:00:00Z")))  # a batch of its own, later

    def callers(first: dt.date, **scope: Any) -> int:
        return int(ask(database, Grouping.DAY, first, dt.date(2026, 11, 20), "UTC", **scope).totals["callers"])

    for scope in ({}, {"campaign_ids": (1,)}):
        assert [callers(dt.date(2026, 11, day), **scope) for day in (9, 11, 12, 13)] == [2, 2, 1, 0]
    assert results_equal_recount(database)

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    assert [callers(dt.date(2026, 11, day)) for day in (9, 11, 12)] == [1, 1, 0]
    assert results_equal_recount(database)


def test_a_report_reads_one_snapshot_while_posts_are_made(database: Database, settings: Settings) -> None:
    """A report is several statements (its rows, its totals, its callers): posts committed while
    it reads are not in any of them, on either database, so its totals are its rows' sums."""
    map_seed_campaign(database)
    make(database, settings, Made("+15550000001", at("2026-11-18T10:00:00Z")))
    first, last = dt.date(2026, 11, 17), dt.date(2026, 11, 20)
    with database.reading() as session:
        asked = Asked(Scope(), first, last, "UTC", Grouping.DAY)
        period = service.period_of(session, asked, "UTC", NOW)
        rows = service.grouped(session, Scope(), period, Grouping.DAY)
        make(database, settings, Made("+15550000002", at("2026-11-19T10:00:00Z")))  # committed meanwhile
        totals = service.totals(session, Scope(), period)
    assert sum(row["calls"] for row in rows) == totals["calls"] == totals["callers"] == 1
    assert ask(database, Grouping.DAY, first, last, "UTC").totals["callers"] == 2


def test_the_campaign_time_zone_is_the_default_and_bad_requests_are_refused(
    database: Database, settings: Settings
) -> None:
    map_seed_campaign(database)
    with database.writing() as session:
        activity.update_campaign(session, 1, {"timezone": "Asia/Kathmandu"})
    make(database, settings, Made("+15550000001", at("2026-11-18T18:15Z")))  # 19 Nov, 00:00 in Kathmandu
    with database.reading() as session:

        def answer(**asked: Any) -> Any:
            return service.answer(session, Asked(**asked), default_tz="Europe/Paris", now=NOW, share=0.5, at_least=20)

        mine = answer(scope=Scope(campaign_ids=(1,)), first=dt.date(2026, 11, 19), last=dt.date(2026, 11, 19))
        assert (mine.period.name, mine.totals["calls"]) == ("Asia/Kathmandu", 1)
        assert answer(scope=Scope()).period.name == "Europe/Paris"
        default = answer(scope=Scope(campaign_ids=(1,)))
        assert (default.period.first, default.period.last) == (dt.date(2026, 10, 22), dt.date(2026, 11, 20))
        whole = answer(scope=Scope(campaign_ids=(1,)), everything=True)
        assert (whole.period.first, whole.period.last) == (dt.date(2026, 11, 19), dt.date(2026, 11, 20))
        every = answer(scope=Scope(), everything=True)  # (from the sums kept for every campaign at once)
        assert (every.period.first, every.period.last) == (dt.date(2026, 11, 18), dt.date(2026, 11, 20))
        for asked, field in (
            ({"tz": "Mars/Olympus"}, "tz"),
            ({"tz": "/etc/localtime"}, "tz"),
            ({"first": dt.date(2026, 11, 2), "last": dt.date(2026, 11, 1)}, "to"),
            ({"first": dt.date(1800, 1, 1), "last": dt.date(2026, 1, 1)}, "from"),
            ({"first": dt.date(2020, 1, 1), "last": dt.date(2026, 1, 1), "grouping": Grouping.HOUR}, "group_by"),
        ):
            with pytest.raises(InvalidInput) as refused:
                answer(scope=Scope(), **asked)
            assert list(refused.value.fields) == [field]
    with database.writing() as session, pytest.raises(InvalidInput) as refused:
        activity.update_campaign(session, 1, {"timezone": "Eastern"})
    assert list(refused.value.fields) == ["timezone"]


def test_an_office_that_stopped_answering_is_flagged(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    recent = NOW - dt.timedelta(hours=3)
    calls = [
        Made(f"+1555000{n:04d}", recent + dt.timedelta(minutes=n), status="busy" if n % 10 < 7 else "completed")
        for n in range(20)
    ] + [
        Made(f"+1555100{n:04d}", recent, name="Minnie", district="CA-12", status="no-answer") for n in range(19)
    ]  # too few to say
    make(database, settings, *calls)
    with database.reading() as session:
        flagged = service.unreachable(session, Scope(), now=NOW, share=0.5, at_least=20)
        assert [t.describe() for t in flagged] == [
            "Representative Mickey Mouse (FL-7): 70% of 20 calls in the last 24 h not answered"
        ]
        assert service.unreachable(session, Scope(), now=NOW + dt.timedelta(hours=22), share=0.5, at_least=20) == []
        assert service.unreachable(session, Scope(), now=NOW, share=0.7, at_least=20) == []
    by_target = ask(database, Grouping.TARGET, NOW.date(), NOW.date(), "UTC")
    assert [(r["target_name"], r["unreachable"]) for r in by_target.rows] == [("Mickey Mouse", True), ("Minnie", False)]

    # A window that begins and ends inside an hour (its whole hours are read from the sums by hour
    # and target, its edge quarters from the posts): from 09:15 today, Mickey's calls of 09:15
    # to 09:19 (two busy), none of Minnie's (09:00), and one busy call of 09:02 tomorrow.
    make(database, settings, Made("+15552000001", NOW + dt.timedelta(hours=21, minutes=2), status="busy"))
    with database.reading() as session:
        flagged = service.unreachable(
            session, Scope(), now=NOW + dt.timedelta(hours=21, minutes=5), share=0.3, at_least=1
        )
    assert [t.describe() for t in flagged] == [
        "Representative Mickey Mouse (FL-7): 50% of 6 calls in the last 24 h not answered"
    ]


def test_campaigns_are_made_with_a_time_zone(database: Database) -> None:
    with database.writing() as session:
        made = activity.create_campaign(session, internal_title="Elsewhere", timezone="America/Chicago")
        assert made.timezone == "America/Chicago"
        with pytest.raises(InvalidInput):
            activity.create_campaign(session, internal_title="Nowhere", timezone="Chicago")


def test_concurrent_importers_on_postgresql_keep_the_results_exact(postgres_url: str) -> None:
    """Four importers at once on 1,200 calls of 150 members to two campaigns over a few hours,
    while one campaign's time zone changes four times: members first seen by two importers at
    once, contended quarter-hour rows; the results kept equal a recount (the weekday-hours in the
    last zone), each member is new exactly once."""
    settings = Settings(database_url=postgres_url, callpower_api_keys=("k" * 32,), admin_tokens=("t" * 32,))
    database = Database.for_settings(settings)
    map_seed_campaign(database, 1)
    map_seed_campaign(database, 2)
    start = dt.datetime(2026, 11, 18, 14, tzinfo=UTC)
    statuses = ["completed", "completed", "completed", "busy", "no-answer", "failed"]
    for first in range(0, 1200, 200):
        store(
            database,
            *(
                Made(
                    f"+1555000{n % 150:04d}",
                    start + dt.timedelta(seconds=17 * n),
                    statuses[n % len(statuses)],
                    n % 300,
                    district=f"FL-{n % 7}",
                    callpower_campaign_id=1 + n % 2,
                ).record()
                for n in range(first, first + 200)
            ),
        )
    errors: list[BaseException] = []

    def importing() -> None:
        importer = Importer(database, settings.model_copy(update={"import_batch_size": 25}), CallPower())
        try:
            while importer.import_batch():
                pass
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)

    def rezoning() -> None:  # (campaign 1's weekday-hours counted again in each zone as calls arrive)
        try:
            for tz in ("America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns"):
                with database.writing() as session:
                    activity.update_campaign(session, 1, {"timezone": tz})
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            errors.append(error)

    threads = [threading.Thread(target=importing) for _ in range(4)] + [threading.Thread(target=rezoning)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    import_all(database, settings)
    assert results_equal_recount(database)
    found = ask(database, Grouping.CAMPAIGN, start.date(), start.date(), "UTC")
    assert found.totals["calls"] == 1200
    assert (found.totals["callers"], found.totals["new_members"]) == (150, 150)
    database.dispose()


def test_a_member_is_one_caller_a_day_and_an_hour_whatever_order_their_calls_arrive_in(
    database: Database, settings: Settings
) -> None:
    """Distinct callers by day and hour in one campaign are summed from each post's gap since its
    member's previous call: a call imported after a later one of the same day (a history sent
    out of order, a batch each) takes the later one's place as the day's first, in UTC and in a
    zone whose day begins at another hour, and so does a batch with calls before and after the
    member's last, and a call in the quarter of their last; an erasure takes every gap of the
    member out."""
    map_seed_campaign(database)
    calls = [
        Made("+15550000001", at("2026-11-18T10:00:00Z")),
        Made("+15550000002", at("2026-11-18T10:20:00Z")),
        Made("+15550000001", at("2026-11-18T09:00:00Z")),  # earlier, arriving later
        Made("+15550000001", at("2026-11-18T09:05:00Z")),  # the same quarter hour
        Made("+15550000001", at("2026-11-18T03:00:00Z")),  # 17 Nov in New York, 18 Nov in UTC
        Made("+15550000001", at("2026-11-19T09:00:00Z")),
    ]
    for call in calls:
        make(database, settings, call)
    # One batch around the member's last call: one before it, one after.
    around = [Made("+15550000001", at("2026-11-19T08:00:00Z")), Made("+15550000001", at("2026-11-19T10:00:00Z"))]
    make(database, settings, *around)
    again = Made("+15550000001", at("2026-11-19T10:05:00Z"))  # in the quarter of their last call
    make(database, settings, again)
    calls += [*around, again]
    first, last = dt.date(2026, 11, 17), dt.date(2026, 11, 19)
    for tz in ("UTC", "America/New_York", "Asia/Kathmandu"):
        for grouping, key in ((Grouping.DAY, lambda local: local.date().isoformat()), (Grouping.HOUR, hour_key)):
            found = ask(database, grouping, first, last, tz, campaign_ids=(1,))
            got = {row[grouping.value]: row["callers"] for row in found.rows if row["calls"]}
            want = {k: row["callers"] for k, row in expected(calls, key, first, last, tz).items()}
            assert got == want, (tz, grouping)
    assert {
        row["day"]: row["callers"] for row in ask(database, Grouping.DAY, first, last, "UTC", campaign_ids=(1,)).rows
    } == {"2026-11-17": 0, "2026-11-18": 2, "2026-11-19": 1}
    assert results_equal_recount(database)

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    found = ask(database, Grouping.DAY, first, last, "UTC", campaign_ids=(1,))
    assert {row["day"]: row["callers"] for row in found.rows} == {"2026-11-17": 0, "2026-11-18": 1, "2026-11-19": 0}
    assert results_equal_recount(database)


def test_a_member_is_one_caller_of_a_target_state_and_district_whatever_order_their_calls_arrive_in(
    database: Database, settings: Settings
) -> None:
    """Distinct callers by target, state and district in one campaign are its calls less the posts
    whose member's previous call to the same office (state, district) is in the period too: a
    history sent out of order (a call before the member's last, in a batch of its own and in a
    batch with a later one), a second call in the same quarter, periods that begin between a
    member's calls and after them, in a zone whose day begins at another hour; an erasure takes
    the member's repeats out."""
    map_seed_campaign(database)
    mickey, minnie, office = TARGETS
    calls = [
        Made("+15550000001", at("2026-11-18T10:00:00Z"), name=mickey[0], title=mickey[1], district=mickey[2]),
        Made("+15550000002", at("2026-11-18T10:20:00Z"), name=mickey[0], title=mickey[1], district=mickey[2]),
        Made("+15550000001", at("2026-11-19T10:00:00Z"), name=minnie[0], title=minnie[1], district=minnie[2]),
        Made("+15550000001", at("2026-11-17T09:00:00Z"), name=mickey[0], title=mickey[1], district=mickey[2]),
        Made("+15550000001", at("2026-11-17T09:05:00Z"), name=minnie[0], title=minnie[1], district=minnie[2]),
        Made("+15550000002", at("2026-11-20T03:00:00Z"), name=office[0], title=office[1], district=office[2]),
    ]
    for call in calls:
        make(database, settings, call)
    around = [  # one batch around member 1's last call: one before it, one after
        Made("+15550000001", at("2026-11-16T08:00:00Z"), name=office[0], title=office[1], district=office[2]),
        Made("+15550000001", at("2026-11-21T10:00:00Z"), name=mickey[0], title=mickey[1], district=mickey[2]),
        Made("+15550000001", at("2026-11-21T10:05:00Z"), name=mickey[0], title=mickey[1], district=mickey[2]),
    ]
    make(database, settings, *around)
    calls += around
    assert results_equal_recount(database)

    def callers(grouping: Grouping, first: dt.date, last: dt.date, tz: str) -> dict[Any, int]:
        found = ask(database, grouping, first, last, tz, campaign_ids=(1,))
        if grouping == Grouping.TARGET:
            return {(r["target_name"], r["target_title"], r["target_district"]): r["callers"] for r in found.rows}
        return {r[grouping.value]: r["callers"] for r in found.rows if r["calls"]}

    def wanted(grouping: Grouping, first: dt.date, last: dt.date, tz: str) -> dict[Any, int]:
        return {key: row["callers"] for key, row in expected_by_target(calls, grouping, first, last, tz).items()}

    for tz in ("UTC", "America/New_York", "Asia/Kathmandu"):
        for first, last in (
            (dt.date(2026, 11, 16), dt.date(2026, 11, 21)),
            (dt.date(2026, 11, 18), dt.date(2026, 11, 20)),
        ):
            for grouping in (Grouping.TARGET, Grouping.STATE, Grouping.DISTRICT):
                assert callers(grouping, first, last, tz) == wanted(grouping, first, last, tz), (tz, first, grouping)
    whole = (dt.date(2026, 11, 16), dt.date(2026, 11, 21))
    assert callers(Grouping.STATE, *whole, "UTC") == {"FL": 2, None: 2}
    assert callers(Grouping.TARGET, *whole, "UTC")[mickey] == 2

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    assert callers(Grouping.STATE, *whole, "UTC") == {"FL": 1, None: 1}
    assert results_equal_recount(database)


def test_a_member_is_one_caller_of_a_weekday_hour_whatever_order_their_calls_arrive_in(
    database: Database, settings: Settings
) -> None:
    """Distinct callers by weekday-hour in one campaign, in its own zone, are its members' first
    calls of each local hour less those whose member's previous call in the same weekday-hour is
    in the period too: Mondays at 14:00 in New York over five weeks, across the end of daylight
    saving (the same local hour is another UTC hour), a history sent out of order (alone and in
    a batch around the member's last call), two calls in one hour, periods that begin between a
    member's calls; then the campaign's zone changes (counted again), and an erasure takes the
    member's repeats out. Other zones are counted member by member, and agree."""
    map_seed_campaign(database)
    with database.writing() as session:
        activity.update_campaign(session, 1, {"timezone": "America/New_York"})
    calls = [
        Made("+15550000001", at("2026-11-16T14:10:00-05:00")),  # Monday 14:00 in New York
        Made("+15550000002", at("2026-11-16T14:30:00-05:00")),
        Made("+15550000001", at("2026-11-09T14:05:00-05:00")),  # a week earlier, arriving later
        Made("+15550000001", at("2026-10-26T14:15:00-04:00")),  # daylight saving: 18:15 UTC
        Made("+15550000001", at("2026-11-16T14:50:00-05:00")),  # the same hour again
        Made("+15550000002", at("2026-11-17T09:00:00-05:00")),  # Tuesday
        Made("+15550000003", at("2026-11-03T00:05:00-05:00")),  # in the first quarter of a period
        Made("+15550000003", at("2026-11-10T00:20:00-05:00")),
    ]
    for call in calls:
        make(database, settings, call)
    around = [  # one batch around member 1's last call: one before it, one after
        Made("+15550000001", at("2026-11-02T14:45:00-05:00")),
        Made("+15550000001", at("2026-11-23T14:01:00-05:00")),
    ]
    make(database, settings, *around)
    calls += around

    def callers(first: dt.date, last: dt.date, tz: str) -> dict[Any, int]:
        found = ask(database, Grouping.WEEKDAY_HOUR, first, last, tz, campaign_ids=(1,))
        return {(row["weekday"], row["hour"]): row["callers"] for row in found.rows if row["calls"]}

    def wanted(first: dt.date, last: dt.date, tz: str) -> dict[Any, int]:
        found = expected(calls, lambda local: (local.weekday(), local.hour), first, last, tz)
        return {key: row["callers"] for key, row in found.items()}

    periods = [
        (dt.date(2026, 10, 26), dt.date(2026, 11, 23)),
        (dt.date(2026, 11, 3), dt.date(2026, 11, 20)),
        (dt.date(2026, 11, 10), dt.date(2026, 11, 30)),
    ]
    for tz in ("America/New_York", "UTC", "Asia/Kathmandu"):
        for first, last in periods:
            assert callers(first, last, tz) == wanted(first, last, tz), (tz, first)
    assert callers(*periods[0], "America/New_York") == {(0, 14): 2, (1, 9): 1, (1, 0): 1}
    assert results_equal_recount(database)

    with database.writing() as session:  # (member 1's Mondays are 00:45–01:35 on Tuesday there)
        activity.update_campaign(session, 1, {"timezone": "Asia/Kathmandu"})
    assert results_equal_recount(database)
    for first, last in periods:
        assert callers(first, last, "Asia/Kathmandu") == wanted(first, last, "Asia/Kathmandu"), first

    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    calls = [call for call in calls if call.mobile != "+15550000001"]
    for first, last in periods:
        assert callers(first, last, "Asia/Kathmandu") == wanted(first, last, "Asia/Kathmandu"), first
    assert results_equal_recount(database)


def test_callers_by_action_whether_or_not_an_action_is_alone_in_its_campaign(
    database: Database, settings: Settings
) -> None:
    """An action that is its campaign's only one with calls has its campaign's callers (read from
    the members' last calls, for a period that runs to the last call); a campaign with two
    actions counts each action's members."""
    map_seed_campaign(database, 1)  # campaign 1, action 1
    map_seed_campaign(database, 2)  # campaign 2, action 2
    with database.writing() as session:
        operations.add_action(session, campaign_id=2, name="Call the Senate", callpower_campaign_id=3)  # action 3
    calls = [
        Made("+15550000001", at("2026-11-18T10:00:00Z"), callpower_campaign_id=1),
        Made("+15550000001", at("2026-11-18T11:00:00Z"), callpower_campaign_id=1),
        Made("+15550000002", at("2026-11-18T12:00:00Z"), callpower_campaign_id=1),
        Made("+15550000001", at("2026-11-19T10:00:00Z"), callpower_campaign_id=2),
        Made("+15550000002", at("2026-11-19T11:00:00Z"), callpower_campaign_id=2),
        Made("+15550000002", at("2026-11-19T12:00:00Z"), callpower_campaign_id=3),
    ]
    make(database, settings, *calls)

    def callers(first: dt.date, last: dt.date, **scope: Any) -> list[tuple[int, int, int]]:
        found = ask(database, Grouping.ACTION, first, last, "UTC", **scope)
        return sorted((row["action_id"], row["calls"], row["callers"]) for row in found.rows)

    to_the_end, before_it = dt.date(2026, 11, 20), dt.date(2026, 11, 18)
    assert callers(dt.date(2026, 11, 18), to_the_end) == [(1, 3, 2), (2, 2, 2), (3, 1, 1)]
    assert callers(dt.date(2026, 11, 18), to_the_end, campaign_ids=(1,)) == [(1, 3, 2)]
    assert callers(dt.date(2026, 11, 19), to_the_end, campaign_ids=(2,)) == [(2, 2, 2), (3, 1, 1)]
    assert callers(dt.date(2026, 11, 18), before_it) == [(1, 3, 2)]


def test_the_importer_and_an_erasure_find_a_members_rows_by_key(database: Database, settings: Settings) -> None:
    """Each statement that reads or deletes a member's result rows (a returning member's last
    call, their posts when a history arrives out of order, their erasure) is answered from a key,
    not by reading a results table whole (SQLite reads a row value `IN (VALUES ...)` by scanning:
    a million posts' rows per batch)."""
    map_seed_campaign(database)
    sent: list[tuple[str, Any]] = []

    def record(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not many and " report_" in statement and "WHERE" in statement:
            sent.append((statement, parameters))

    sa.event.listen(database.engine, "before_cursor_execute", record)
    try:
        make(database, settings, Made("+15550000001", at("2026-11-18T10:00:00Z")))
        make(database, settings, Made("+15550000001", at("2026-11-18T10:05:00Z")))  # their last quarter
        make(database, settings, Made("+15550000001", at("2026-11-17T10:00:00Z")))  # out of order
        with database.reading() as session:
            member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
        members.erase(database, str(member), "test")
    finally:
        sa.event.remove(database.engine, "before_cursor_execute", record)
    tables = ("report_members", "report_calls")
    assert {table for table in tables if any(f"FROM {table}" in statement for statement, _ in sent)} == set(tables)
    whole = []
    with database.engine.connect() as connection:
        cursor = connection.connection.cursor()
        if database.dialect != "sqlite":
            cursor.execute("SET enable_seqscan = off")
        for statement, parameters in sent:
            if database.dialect == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
                plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            else:
                cursor.execute(f"EXPLAIN {statement}", parameters)
                plan = " | ".join(str(row[0]) for row in cursor.fetchall())
            if any(f"SCAN {table}" in plan or f"Seq Scan on {table}" in plan for table in tables):
                whole.append(f"{statement}\n  -> {plan}")
    assert whole == []
