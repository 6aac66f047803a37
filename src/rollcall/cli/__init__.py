"""The `rollcall` command. Every command calls the same service functions as the HTTP API.

Errors the user can fix print one line on stderr and exit 1; they never print a traceback.
The commands live by subject: `running.py` (serve, worker, migrate, keys), `calls.py`,
`activity.py`, `backups.py`, `members.py`, `reports.py`, `webhooks.py`; `common.py` holds what
they share. Each loads the services it calls when it runs (`lazy.py`), so that `--help` is quick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer

from rollcall.cli import activity, backups, calls, members, reports, running  # noqa: F401  (they add their commands to `app`)
from rollcall.cli.common import CommandError, app
from rollcall.cli.webhooks import webhooks_app
from rollcall.errors import InvalidInput, RollcallError

app.add_typer(webhooks_app, name="webhooks")

# -- the one place errors become a line on stderr -------------------------------------------


def _user_errors() -> tuple[type[BaseException], ...]:
    """What the user can fix (the classes of the modules a command loaded, imported only now)."""
    import sqlalchemy as sa

    from rollcall.config import ConfigError
    from rollcall.db import DatabaseNotMigrated

    return (
        CommandError,
        RollcallError,
        ConfigError,
        DatabaseNotMigrated,
        sa.exc.OperationalError,
        sa.exc.ArgumentError,
    )


def _describe(error: BaseException) -> str:
    import sqlalchemy as sa

    if isinstance(error, InvalidInput):
        return "; ".join(message for messages in error.fields.values() for message in messages)
    if isinstance(error, sa.exc.OperationalError):
        return "database error: " + str(error.orig).strip().splitlines()[0]
    return str(error)


def main(argv: Sequence[str] | None = None, *, run: Callable[..., Any] = app) -> None:
    try:
        run(args=argv, prog_name="rollcall")
    except (CommandError, RollcallError) as error:
        typer.echo(f"error: {_describe(error)}", err=True)
        raise SystemExit(1) from None
    except Exception as error:
        if not isinstance(error, _user_errors()):
            raise
        typer.echo(f"error: {_describe(error)}", err=True)
        raise SystemExit(1) from None
