"""Commands on webhook endpoints: add (its secret is printed once), list, remove, deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import JsonOption, LimitOption, database_of, print_rows, settings_of_environment
from rollcall.cli.lazy import lazy
from rollcall.webhooks.troubled import Troubled

if TYPE_CHECKING:
    from rollcall import paging
    from rollcall.webhooks import endpoints, models
else:
    endpoints, models = lazy("rollcall.webhooks.endpoints"), lazy("rollcall.webhooks.models")
    paging = lazy("rollcall.paging")

webhooks_app = typer.Typer(
    rich_markup_mode=None, help="Webhook endpoints: where events are pushed.", no_args_is_help=True
)


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="https:// URL of the receiver.")],
    events: Annotated[list[str], typer.Option("--event", help="An event type it receives (repeatable).")],
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
) -> None:
    """Add an endpoint; its signing secret is printed this once."""
    settings = settings_of_environment()
    with database_of(settings).writing() as session:
        webhook, secret = endpoints.create_webhook(
            session, url=url, events=events, description=description, settings=settings
        )
        typer.echo(f"webhook {webhook.id} added: {webhook.url} ({', '.join(webhook.events)})")
    typer.echo(f"secret: {secret}  (shown this once: give it to the receiver to check signatures)")


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List endpoints, newest first, with their health."""
    with database_of().reading() as session:
        found = endpoints.list_webhooks(session, paging.PageRequest(limit))
        rows = [
            models.WebhookDocument.model_validate(shape).model_dump(mode="json")
            for shape in endpoints.shapes(session, found.items)
        ]
    if not as_json:
        for row in rows:
            row["events"] = ",".join(row["events"])
    print_rows(rows, as_json, ("id", "url", "events", "health", "waiting", "failed", "last_success_at"))


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: Annotated[int, typer.Argument(help="The endpoint.")]) -> None:
    """Remove an endpoint and its deliveries."""
    with database_of().writing() as session:
        endpoints.delete_webhook(session, webhook_id)
    typer.echo(f"webhook {webhook_id} removed")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: Annotated[int, typer.Argument(help="The endpoint.")],
    only: Annotated[
        Troubled | None,
        typer.Option("--only", help="failed (gave up), retrying (failed once, another attempt due), failing (either)."),
    ] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """An endpoint's deliveries, newest first, with their last attempt."""
    with database_of().reading() as session:
        found = endpoints.list_deliveries(session, webhook_id, paging.PageRequest(limit), only=only)
        rows = [view.model_dump(mode="json") for view in found.items]
    print_rows(rows, as_json, ("id", "event_id", "event_type", "state", "attempts", "last_status", "last_error"))
