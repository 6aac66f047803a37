"""The console's Results pages: what a campaign's calls achieved (or every campaign's), over a
period of local dates in the campaign's time zone, with the CSV of each table; and setting that
time zone. The figures come from `reports.service`, as the API's and the CLI's do."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from rollcall import spreadsheets
from rollcall.activity import service as activity
from rollcall.activity.models import Campaign
from rollcall.api import MAX_ID
from rollcall.console import charts
from rollcall.console.rendering import Form, Notice, Staff, back_to, console_router, render
from rollcall.reports import service
from rollcall.reports.groupings import Grouping
from rollcall.reports.models import OUTCOMES
from rollcall.reports.periods import Period, today_in
from rollcall.reports.service import Asked, Scope, Unreachable
from rollcall.services import services_of
from rollcall.times import utcnow, zone, zone_names

router = console_router()

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]
First = Annotated[dt.date | None, Query(alias="from", description="The first local date of the period.")]
Last = Annotated[dt.date | None, Query(alias="to", description="The last local date of the period.")]
# The tables a page sorts, and the columns each sorts by (a text column ascending, numbers most first).
SORTS = {
    "calls": lambda row: -row["calls"],
    "completion": lambda row: -_share(row["completed"], row["calls"]),
    "busy": lambda row: -_share(row["busy"], row["calls"]),
    "no_answer": lambda row: -_share(row["no_answer"], row["calls"]),
    "talk_seconds": lambda row: -row["talk_seconds"],
}
TEXT_SORTS = {"target": "target_name", "state": "state", "district": "district"}


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True)
class Table:
    """A sortable table of a page: its grouping, rows in the order asked for, and that order."""

    name: str
    rows: list[dict[str, Any]]
    sort: str


@dataclass(frozen=True)
class Results:
    campaign: Campaign | None
    period: Period
    today: dt.date
    first_call: dt.date | None
    totals: dict[str, int]
    days: list[dict[str, Any]]
    week: list[list[charts.Cell]]
    tables: dict[str, Table]
    campaigns: list[dict[str, Any]]  # the all-campaigns page: a row per campaign, with its title
    unreachable: list[Unreachable]
    chart: charts.StackedBars


def _sorted(name: str, rows: list[dict[str, Any]], sort: str | None) -> Table:
    if sort == "name":
        column = TEXT_SORTS[name]
        return Table(name, sorted(rows, key=lambda row: (row[column] is None, row[column] or "")), "name")
    if sort in SORTS:
        return Table(name, sorted(rows, key=SORTS[sort]), sort)
    return Table(name, rows, "calls")


def results_of(
    request: Request, campaign_id: int | None, first: dt.date | None, last: dt.date | None, sorts: dict[str, str | None]
) -> Results:
    """Everything a Results page shows, in one transaction."""
    services = services_of(request)
    settings = services.settings
    now = utcnow()
    scope = Scope(campaign_ids=(campaign_id,) if campaign_id else None)
    with services.database.reading() as db:
        campaign = activity.get_campaign(db, campaign_id) if campaign_id else None
        asked = Asked(scope, first, last)
        tz = service.zone_of(db, scope, None, settings.default_timezone)
        period = service.period_of(db, asked, tz, now)
        found = service.first_quarter(db, scope)
        # Distinct callers only in the totals: by day, hour, target or place they are a count of
        # members over every member's row of the period, which the API and the CSVs give.
        days = service.grouped(db, scope, period, Grouping.DAY, callers=False)
        week = service.grouped(db, scope, period, Grouping.WEEKDAY_HOUR, callers=False)
        flagged = service.unreachable(
            db, scope, now=now, share=settings.unreachable_share, at_least=settings.unreachable_min_calls
        )
        targets = service.grouped(db, scope, period, Grouping.TARGET, callers=False)
        service.flag(targets, flagged)
        states, districts = service.places(targets)
        tables = {
            name: _sorted(name, rows, sorts.get(name))
            for name, rows in (("target", targets), ("state", states), ("district", districts))
        }
        campaigns: list[dict[str, Any]] = []
        if campaign is None:
            campaigns = service.grouped(db, scope, period, Grouping.CAMPAIGN, callers=False)
            titles = activity.campaign_titles(db, [row["campaign_id"] for row in campaigns])
            campaigns = [{**row, "title": titles.get(row["campaign_id"], "")} for row in campaigns]
        totals = service.totals(db, scope, period)
    zone_info = zone(period.name)
    return Results(
        campaign=campaign,
        period=period,
        today=today_in(zone_info, now),
        first_call=Period.date_of(found, zone_info) if found is not None else None,
        totals=totals,
        days=days,
        week=charts.week_grid(week),
        tables=tables,
        campaigns=campaigns,
        unreachable=flagged,
        chart=charts.stacked_bars(days, OUTCOMES, "day"),
    )


def _page(request: Request, results: Results, sorts: dict[str, str | None]) -> HTMLResponse:
    path = f"/console/results/{results.campaign.id}" if results.campaign else "/console/results"
    period = {"from": results.period.first.isoformat(), "to": results.period.last.isoformat()}

    def address(**changes: str | None) -> str:
        query = {**period, **{f"sort_{k}": v for k, v in sorts.items() if v}, **changes}
        return path + "?" + urlencode({k: v for k, v in query.items() if v})

    def csv(by: str) -> str:
        scope = {"campaign_id": str(results.campaign.id)} if results.campaign else {}
        return "/console/results.csv?" + urlencode({"by": by, **scope, **period})

    today = results.today
    choices = [
        ("Last 7 days", today - dt.timedelta(days=6), today),
        ("Last 30 days", today - dt.timedelta(days=29), today),
    ]
    if results.first_call:
        choices.append(("All", min(results.first_call, today), today))
    return render(
        request,
        "results.html",
        results=results,
        address=address,
        csv=csv,
        choices=[
            (label, path + "?" + urlencode({"from": f.isoformat(), "to": t.isoformat()})) for label, f, t in choices
        ],
        chosen=period,
        outcomes=OUTCOMES,
        weekdays=charts.WEEKDAYS,
        zones=sorted(zone_names()),
        default_timezone=services_of(request).settings.default_timezone,
    )


def _sorts(target: str | None, state: str | None, district: str | None) -> dict[str, str | None]:
    return {"target": target, "state": state, "district": district}


Sort = Annotated[str | None, Query(pattern=r"^(name|calls|completion|busy|no_answer|talk_seconds)$")]


@router.get("/results")
def all_results_page(
    request: Request,
    session: Staff,
    first: First = None,
    last: Last = None,
    sort_target: Sort = None,
    sort_state: Sort = None,
    sort_district: Sort = None,
) -> HTMLResponse:
    sorts = _sorts(sort_target, sort_state, sort_district)
    return _page(request, results_of(request, None, first, last, sorts), sorts)


@router.get("/results/{campaign_id}")
def campaign_results_page(
    request: Request,
    session: Staff,
    campaign_id: CampaignId,
    first: First = None,
    last: Last = None,
    sort_target: Sort = None,
    sort_state: Sort = None,
    sort_district: Sort = None,
) -> HTMLResponse:
    sorts = _sorts(sort_target, sort_state, sort_district)
    return _page(request, results_of(request, campaign_id, first, last, sorts), sorts)


@router.post("/results/{campaign_id}/timezone")
async def set_timezone(request: Request, session: Staff, form: Form, campaign_id: CampaignId) -> Response:
    name = str(form.get("timezone") or "").strip()

    def save() -> None:
        with services_of(request).database.writing() as db:
            activity.update_campaign(db, campaign_id, {"timezone": name or None})

    await run_in_threadpool(save)
    return back_to(f"/console/results/{campaign_id}", Notice.TIMEZONE_SAVED, campaign=campaign_id)


@router.get("/results.csv")
def results_csv(
    request: Request,
    session: Staff,
    by: Annotated[Grouping, Query()],
    campaign_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    first: First = None,
    last: Last = None,
) -> Response:
    services = services_of(request)
    settings = services.settings
    scope = Scope(campaign_ids=(campaign_id,) if campaign_id else None)
    with services.database.reading() as db:
        if campaign_id:
            activity.get_campaign(db, campaign_id)
        found = service.answer_now(db, Asked(scope, first, last, None, by), settings)
    buffer = io.StringIO()
    spreadsheets.Writer(buffer).writerows(found.table())
    name = f"campaign-{campaign_id}" if campaign_id else "all-campaigns"
    filename = f"results-{name}-by-{by.value}-{found.period.first}-to-{found.period.last}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
