"""Members' data from the command line: erase a member, export everything held about one, and
the audit log of both."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from rollcall.cli.common import JsonOption, LimitOption, app, database_of, print_rows, users_app
from rollcall.cli.lazy import lazy

if TYPE_CHECKING:
    from rollcall import paging
    from rollcall.members import audit
    from rollcall.members import service as members
else:
    audit, members, paging = lazy("rollcall.members.audit"), lazy("rollcall.members.service"), lazy("rollcall.paging")

audit_app = typer.Typer(rich_markup_mode=None, help="Who erased or exported members' data.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

UserId = Annotated[str, typer.Argument(help="The user's id.")]


@users_app.command("erase")
def users_erase(
    user_id: UserId,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a member: the user, their signups and posts go, their stored calls are scrubbed
    (state `erased`); `user.erased` is sent to webhooks. Cannot be undone."""
    if not yes:
        typer.confirm(f"Erase user {user_id} and everything held about them? This cannot be undone", abort=True)
    erased = members.erase(database_of(), user_id, audit.cli_actor())
    print_rows(erased.model_dump(), as_json, ("user_id", "signups", "posts", "calls", "events"))


@users_app.command("export")
def users_export(user_id: UserId) -> None:
    """Everything held about a member, as one JSON document on stdout."""
    document = members.export(database_of(), user_id, audit.cli_actor())
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


@audit_app.command("list")
def audit_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """Erasures and exports, newest first: when, who, which member, what it came to."""
    with database_of().reading() as session:
        rows = [audit.AuditDocument.of(entry) for entry in audit.list_entries(session, paging.PageRequest(limit)).items]
    print_rows(rows, as_json, ("id", "at", "actor", "action", "subject", "details"))
