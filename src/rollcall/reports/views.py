"""`/api/v3/reports/calls`: the campaign results (parse, call the service, shape the answer)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from rollcall.api import INTEGER_LIST, STAFF, errors, integers
from rollcall.errors import InvalidInput
from rollcall.reports import service
from rollcall.reports.groupings import Grouping
from rollcall.reports.models import Report
from rollcall.reports.service import Asked, Scope
from rollcall.services import ServicesDep
from rollcall.times import zone_names

router = APIRouter(prefix="/api/v3/reports", dependencies=STAFF, tags=["reports"])

# The service's names of what was asked, as this route's parameters name them.
_PARAMETERS = {"from": "filter[date][gte]", "to": "filter[date][lte]", "tz": "tz", "group_by": "group_by"}


def _ids(alias: str, what: str) -> Any:
    return Query(alias=alias, pattern=INTEGER_LIST, description=f"Comma-separated {what} ids: any of them.")


@router.get("/calls", response_model=Report, responses=errors())
def calls_report(
    services: ServicesDep,
    campaign_id: Annotated[str | None, _ids("filter[campaign_id]", "campaign")] = None,
    action_id: Annotated[str | None, _ids("filter[action_id]", "action")] = None,
    callpower_campaign_id: Annotated[str | None, _ids("filter[callpower_campaign_id]", "CallPower campaign")] = None,
    first: Annotated[
        dt.date | None,
        Query(alias="filter[date][gte]", description="The first local date (YYYY-MM-DD) of the period, included."),
    ] = None,
    last: Annotated[
        dt.date | None,
        Query(
            alias="filter[date][lte]",
            description="The last local date of the period, included. Default: the 30 days ending today (or "
            "beginning on filter[date][gte]).",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        Query(
            max_length=64,
            json_schema_extra={"enum": sorted(zone_names())},
            description="IANA time zone of the dates, days and hours (America/New_York). Default: the campaign's "
            "when filter[campaign_id] names one campaign that has one, else ROLLCALL_DEFAULT_TIMEZONE.",
        ),
    ] = None,
    group_by: Annotated[Grouping, Query(description="The rows: one per day, hour, weekday and hour, ...")] = (
        Grouping.DAY
    ),
) -> dict[str, Any]:
    """The figures of the `phone-call` posts of a scope over a period of local dates, counted by
    the call's own time: a row per group (every day or hour of the period, zeros included; time
    rows in time order, the others by calls, most first) and the period's totals in `meta`."""
    scope = Scope(
        _tuple(integers("filter[campaign_id]", campaign_id)),
        _tuple(integers("filter[action_id]", action_id)),
        _tuple(integers("filter[callpower_campaign_id]", callpower_campaign_id)),
    )
    settings = services.settings
    with services.database.reading() as session:
        try:
            found = service.answer_now(session, Asked(scope, first, last, tz, group_by), settings)
        except InvalidInput as error:
            raise InvalidInput(
                {_PARAMETERS.get(name, name): problems for name, problems in error.fields.items()}
            ) from None
        return found.document()


def _tuple(values: list[int] | None) -> tuple[int, ...] | None:
    return tuple(values) if values is not None else None
