"""The `rollcall` command. Every command calls the same service functions as the HTTP API.

Errors the user can fix print one line on stderr and exit 1; they never print a traceback.
The commands live by subject: `running.py` (serve, worker, migrate, keys), `calls.py`,
`activity.py`, `webhooks.py`; `common.py` holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import typer

from rollcall.cli import activity, backups, calls, members, reports, running  # noqa: F401  (they add their commands to `app`)
from rollcall.cli.common import CommandError, app
from rollcall.cli.webhooks import webhooks_app
from rollcall.config import ConfigError
from rollcall.db import DatabaseNotMigrated
from rollcall.errors import InvalidInput, RollcallError

app.add_typer(webhooks_app, name="webhooks")

# -- the one place errors become a line on stderr -------------------------------------------

_USER_ERRORS: tuple[type[BaseException], ...] = (
    CommandError,
    RollcallError,
    ConfigError,
    DatabaseNotMigrated,
    sa.exc.OperationalError,
    sa.exc.ArgumentError,
)


def _describe(error: BaseException) -> str:
    if isinstance(error, InvalidInput):
        return "; ".join(message for messages in error.fields.values() for message in messages)
    if isinstance(error, sa.exc.OperationalError):
        return "database error: " + str(error.orig).strip().splitlines()[0]
    return str(error)


def main(argv: Sequence[str] | None = None, *, run: Callable[..., Any] = app) -> None:
    try:
        run(args=argv, prog_name="rollcall")
    except _USER_ERRORS as error:
        typer.echo(f"error: {_describe(error)}", err=True)
        raise SystemExit(1) from None
