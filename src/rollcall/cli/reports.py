"""`rollcall report`: the campaign results, as the API and the console's Results page give them."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import CommandError, app, database_of, print_rows, settings_of_environment
from rollcall.cli.lazy import lazy
from rollcall.reports.groupings import Grouping

if TYPE_CHECKING:
    from rollcall import spreadsheets
    from rollcall.reports import service
else:
    service, spreadsheets = lazy("rollcall.reports.service"), lazy("rollcall.spreadsheets")


def _date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def _ids(values: list[int] | None) -> tuple[int, ...] | None:
    return tuple(values) if values else None


@app.command("report")
def report(
    campaign_id: Annotated[
        list[int] | None, typer.Option("--campaign-id", min=1, help="A campaign (repeatable: any of them).")
    ] = None,
    action_id: Annotated[list[int] | None, typer.Option("--action-id", min=1, help="An action (repeatable).")] = None,
    callpower_campaign_id: Annotated[
        list[int] | None, typer.Option("--callpower-campaign-id", min=1, help="A CallPower campaign (repeatable).")
    ] = None,
    first: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="The first local date (YYYY-MM-DD), included.")
    ] = None,
    last: Annotated[
        str | None,
        typer.Option("--to", metavar="DATE", help="The last local date, included (default: 30 days ending today)."),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", metavar="ZONE", help="IANA time zone (default: the campaign's, else the configured one)."),
    ] = None,
    by: Annotated[Grouping, typer.Option("--by", help="One row per ...")] = Grouping.DAY,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (safe to open in a spreadsheet).")] = False,
) -> None:
    """The figures of the calls members made (their phone-call posts), by the call's own time in
    a time zone: calls, their outcomes, talk time, distinct callers and new members, per row of a
    grouping, and the period's totals."""
    settings = settings_of_environment()
    asked = service.Asked(
        service.Scope(_ids(campaign_id), _ids(action_id), _ids(callpower_campaign_id)),
        _date(first, "--from"),
        _date(last, "--to"),
        tz,
        by,
    )
    with database_of(settings).reading() as session:
        found = service.answer_now(session, asked, settings)
    if as_json:
        print_rows(found.document(), True)
    elif as_csv:
        spreadsheets.Writer(sys.stdout).writerows(found.table())
    else:
        totals = ", ".join(f"{name} {value}" for name, value in found.totals.items())
        typer.echo(f"{found.period.first} to {found.period.last} ({found.period.name}): {totals}")
        for target in found.unreachable:
            typer.echo(f"unreachable: {target.describe()}")
        print_rows(found.rows, False, found.columns())
