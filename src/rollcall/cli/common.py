"""What every command shares: the typer apps, the settings and database of a command, printing
rows (a table, or `--json`), and the error the user can fix."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer

from rollcall.cli.lazy import lazy

if TYPE_CHECKING:
    from rollcall import config, db
    from rollcall.calls import models as call_models
else:
    config, db, call_models = lazy("rollcall.config"), lazy("rollcall.db"), lazy("rollcall.calls.models")

app = typer.Typer(
    # Click's plain help: a flag shows no type (rich's table shows `--json <bool>`, as if it took one).
    rich_markup_mode=None,
    help="rollcall: CallPower calls become users, signups and phone-call posts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
campaigns_app = typer.Typer(rich_markup_mode=None, help="Campaigns.", no_args_is_help=True)
actions_app = typer.Typer(
    rich_markup_mode=None, help="Campaign actions and their CallPower campaigns.", no_args_is_help=True
)
calls_app = typer.Typer(rich_markup_mode=None, help="Stored CallPower calls.", no_args_is_help=True)
posts_app = typer.Typer(rich_markup_mode=None, help="Posts.", no_args_is_help=True)
users_app = typer.Typer(rich_markup_mode=None, help="Users.", no_args_is_help=True)
signups_app = typer.Typer(rich_markup_mode=None, help="Signups.", no_args_is_help=True)
keys_app = typer.Typer(rich_markup_mode=None, help="The secrets that open the service.", no_args_is_help=True)
callpower_campaigns_app = typer.Typer(
    rich_markup_mode=None, help="CallPower campaigns seen, and their defaults.", no_args_is_help=True
)
stats_app = typer.Typer(
    rich_markup_mode=None, help="The call counts the overview and campaigns pages read.", no_args_is_help=True
)
sessions_app = typer.Typer(rich_markup_mode=None, help="Console sessions.", no_args_is_help=True)
for sub, name in (
    (campaigns_app, "campaigns"),
    (actions_app, "actions"),
    (calls_app, "calls"),
    (posts_app, "posts"),
    (users_app, "users"),
    (signups_app, "signups"),
    (keys_app, "keys"),
    (callpower_campaigns_app, "callpower-campaigns"),
    (stats_app, "stats"),
    (sessions_app, "sessions"),
):
    app.add_typer(sub, name=name)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many rows, newest first.")]
T = TypeVar("T")


class CommandError(Exception):
    """A mistake the user can fix; printed as one line."""


def settings_of_environment() -> config.Settings:
    return config.Settings.from_env()


def database_of(settings: config.Settings | None = None, *, page_cache_mib: int | None = None) -> db.Database:
    """The configured database, which must exist and be migrated (read commands never create it);
    `page_cache_mib` as `db.Database` takes it."""
    from rollcall import glance

    settings = settings or settings_of_environment()
    path = glance.sqlite_file(settings.database_url)
    if path and not Path(path).exists():
        raise CommandError(glance.no_database(path))
    database = db.Database.for_settings(settings, page_cache_mib=page_cache_mib)
    if not db.schema_is_current(database):
        raise CommandError(glance.SCHEMA_NOT_CURRENT)
    return database


def print_rows(rows: Sequence[dict[str, Any]] | dict[str, Any], as_json: bool, columns: Sequence[str] = ()) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if isinstance(rows, dict):
        for key, value in rows.items():
            typer.echo(f"{key}: {value}")
        return
    if not rows:
        typer.echo("(none)")
        return
    columns = list(columns) or list(rows[0])
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def one(value: T | None) -> list[T] | None:
    """A filter on one value, or no filter."""
    return None if value is None else [value]


def state_named(value: str | None) -> call_models.CallState | None:
    if value is None:
        return None
    CallState = call_models.CallState  # noqa: N806
    try:
        return CallState(value)
    except ValueError:
        raise CommandError(f"unknown state {value!r}; one of: {', '.join(s.value for s in CallState)}") from None
