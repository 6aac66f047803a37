"""Commands on stored calls and the CallPower campaigns seen: list, retry, repair, revalidate,
import a file of calls, a campaign's defaults, and recounting the calls (`stats rebuild`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import (
    CommandError,
    JsonOption,
    LimitOption,
    callpower_campaigns_app,
    calls_app,
    database_of,
    one,
    print_rows,
    settings_of_environment,
    state_named,
    stats_app,
)
from rollcall.cli.lazy import lazy
from rollcall.cli.progress import progress_of

if TYPE_CHECKING:
    from rollcall import paging
    from rollcall.callpower import campaigns, source
    from rollcall.calls import models, statistics
    from rollcall.calls import service as calls
else:
    campaigns, source = lazy("rollcall.callpower.campaigns"), lazy("rollcall.callpower.source")
    calls, statistics = lazy("rollcall.calls.service"), lazy("rollcall.calls.statistics")
    models, paging = lazy("rollcall.calls.models"), lazy("rollcall.paging")


@calls_app.command("list")
def calls_list(
    state: Annotated[str | None, typer.Option(help="Only calls in this state.")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List stored calls, newest first."""
    with database_of().reading() as session:
        rows = [
            models.CallDocument.of(c)
            for c in calls.list_calls(session, paging.PageRequest(limit), states=one(state_named(state))).items
        ]
    print_rows(
        rows,
        as_json,
        ("id", "state", "callpower_campaign_id", "mobile", "call_timestamp", "attempts", "post_id", "problem"),
    )


@calls_app.command("retry")
def calls_retry(
    call_id: Annotated[int | None, typer.Argument(help="One call to retry.")] = None,
    state: Annotated[str | None, typer.Option(help="Retry every call in this state.")] = None,
) -> None:
    """Send failed, dead or unmapped calls back to the importer."""
    if (call_id is None) == (state is None):
        raise CommandError("give either a call id or --state, not both")
    with database_of().writing() as session:
        if call_id is not None:
            calls.retry_call(session, call_id)
            typer.echo(f"call {call_id} sent back to the importer")
        else:
            count = calls.retry_calls(session, state_named(state))  # type: ignore[arg-type]
            typer.echo(f"{count} calls sent back to the importer")


def _assignments(values: list[str], option: str) -> dict[str, str | None]:
    """`--set field=value` options as {field: value}; an empty value (`field=`) is None."""
    fields: dict[str, str | None] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise CommandError(f"{option} takes field=value, got {value!r}")
        fields[name.strip()] = text if text.strip() else None
    return fields


SetOption = Annotated[
    list[str], typer.Option("--set", metavar="FIELD=VALUE", help="field=value (repeatable); field= removes the field.")
]


@calls_app.command("repair")
def calls_repair(
    call_id: Annotated[int, typer.Argument(help="A rejected call.")],
    fields: SetOption,
    as_json: JsonOption = False,
) -> None:
    """Correct a rejected call: the body as received with these fields laid over it is validated again."""
    from rollcall.calls.repairs import repair_call

    settings = settings_of_environment()
    with database_of(settings).writing() as session:
        call = repair_call(session, call_id, _assignments(fields, "--set"), source.CallPower.of(settings))
        document = models.CallDocument.of(call)
    if as_json:
        print_rows(document, True)
        return
    typer.echo(
        f"call {call_id} repaired: {document['state']}"
        + (f" (the same call as call {document['duplicate_of']})" if document["duplicate_of"] else "")
    )


@calls_app.command("revalidate")
def calls_revalidate(
    callpower_campaign_id: Annotated[int, typer.Option("--callpower-campaign-id", min=1, help="The campaign.")],
) -> None:
    """Validate a CallPower campaign's rejected calls again, with its defaults as they are now."""
    from rollcall.calls.repairs import revalidate_calls

    settings = settings_of_environment()
    done = revalidate_calls(database_of(settings), callpower_campaign_id, source.CallPower.of(settings))
    typer.echo(f"revalidated={done.revalidated} duplicates={done.duplicates} still_rejected={done.still_rejected}")


@stats_app.command("rebuild")
def stats_rebuild() -> None:
    """Recount the calls by CallPower campaign, day and state, and the campaign results from the
    posts, and keep them (they are kept as calls and posts change; this mends them after a restore
    or a hand edit of the database). On PostgreSQL, writes wait while it counts."""
    from rollcall.calls import results

    settings = settings_of_environment()
    with database_of(settings).writing() as session, progress_of("stats rebuild") as progress:
        progress("calls", 0, None)
        rebuilt = statistics.rebuild(session)
        progress("calls", 1, 1)
        wrong = results.rebuild(session, source.CallPower.of(settings), progress)
    total = sum(rebuilt.counts.by_day.values())
    typer.echo(f"counted {total} calls; {rebuilt.corrected} counters were wrong and are corrected")
    typer.echo(f"recounted the campaign results; {wrong} of their rows were wrong and are corrected")


@callpower_campaigns_app.command("list")
def callpower_campaigns_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List the CallPower campaigns seen, newest id first, with their calls and defaults."""
    with database_of().reading() as session:
        rows = [
            c.model_dump(mode="json")
            for c in campaigns.list_callpower_campaigns(session, paging.PageRequest(limit)).items
        ]
    if not as_json:
        for row in rows:
            row["action"] = row["action"]["id"] if row["action"] else None
            row["calls"] = " ".join(f"{state}={count}" for state, count in row["calls"].items() if count)
            row["defaults"] = " ".join(f"{name}={value!r}" for name, value in row["defaults"].items())
    print_rows(rows, as_json, ("callpower_campaign_id", "name", "action", "calls", "defaults"))


@callpower_campaigns_app.command("defaults")
def callpower_campaigns_defaults(
    callpower_campaign_id: Annotated[int, typer.Argument(help="The CallPower campaign.")],
    fields: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="FIELD=VALUE", help="field=value (repeatable); field= removes that default."),
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", metavar="FIELD", help="A field whose default goes (repeatable).")
    ] = None,
) -> None:
    """Set or remove a CallPower campaign's defaults for fields its calls lack; with no option, show them."""
    changes = _assignments(fields or [], "--set") | dict.fromkeys(unset or [])
    with database_of().writing() as session:
        if changes:
            campaigns.set_campaign_defaults(session, callpower_campaign_id, changes)
        defaults = campaigns.get_callpower_campaign(session, callpower_campaign_id).defaults
    if not defaults:
        typer.echo(f"CallPower campaign {callpower_campaign_id} has no defaults")
    for name, value in defaults.items():
        typer.echo(f"{name}={value}")


@calls_app.command("import")
def calls_import(
    file: Annotated[Path, typer.Argument(help="A JSON-lines (.jsonl) or CSV (.csv) file of call records.")],
) -> None:
    """Store the calls of a file, through the same validation and de-duplication as the intake."""
    from rollcall.callpower.files import import_file

    if not file.is_file():
        raise CommandError(f"no file at {file}")
    settings = settings_of_environment()
    with progress_of(f"import {file.name}") as progress:
        report = import_file(database_of(settings), file, source.CallPower.of(settings), progress)
    for number, problems in report.problems:
        typer.echo(f"line {number}: rejected: {'; '.join(problems)}", err=True)
    typer.echo(f"stored={report.stored} duplicate={report.duplicate} rejected={report.rejected}")
