"""Commands on member activity: campaigns and their actions (with the CallPower campaign each
receives), and the posts, users and signups the importer made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import (
    JsonOption,
    LimitOption,
    actions_app,
    campaigns_app,
    database_of,
    one,
    posts_app,
    print_rows,
    settings_of_environment,
    signups_app,
    users_app,
)
from rollcall.cli.lazy import lazy

if TYPE_CHECKING:
    from rollcall import paging, phones
    from rollcall.activity import models
    from rollcall.activity import service as activity
    from rollcall.calls import service as operations
else:
    activity, models = lazy("rollcall.activity.service"), lazy("rollcall.activity.models")
    operations, paging, phones = lazy("rollcall.calls.service"), lazy("rollcall.paging"), lazy("rollcall.phones")


@campaigns_app.command("add")
def campaigns_add(
    title: Annotated[str, typer.Option("--title", help="The campaign's internal title.")],
    cause: Annotated[str | None, typer.Option(help="Its cause.")] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="The IANA time zone of its results (America/New_York).")
    ] = None,
) -> None:
    """Add a campaign."""
    with database_of().writing() as session:
        campaign = activity.create_campaign(session, internal_title=title, cause=cause, timezone=timezone)
        typer.echo(f"campaign {campaign.id} added")


@campaigns_app.command("list")
def campaigns_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List campaigns, newest first."""
    with database_of().reading() as session:
        rows = [
            models.CampaignDocument.of(c) for c in activity.list_campaigns(session, paging.PageRequest(limit)).items
        ]
    print_rows(rows, as_json, ("id", "internal_title", "cause", "timezone", "created_at"))


@actions_app.command("add")
def actions_add(
    campaign_id: Annotated[int, typer.Option("--campaign-id", help="The campaign the action belongs to.")],
    name: Annotated[str, typer.Option("--name", help="The action's name.")],
    post_type: Annotated[
        str | None,
        typer.Option("--post-type", help="Type of its posts (default: actions' default)."),
    ] = None,
    callpower_campaign_id: Annotated[
        int | None, typer.Option("--callpower-campaign-id", min=1, help="The CallPower campaign it receives calls of.")
    ] = None,
) -> None:
    """Add an action to a campaign, optionally mapped to a CallPower campaign."""
    with database_of().writing() as session:
        action, _ = operations.add_action(
            session,
            campaign_id=campaign_id,
            name=name,
            callpower_campaign_id=callpower_campaign_id,
            **({"post_type": post_type} if post_type else {}),
        )
        typer.echo(f"action {action.id} added")


@actions_app.command("list")
def actions_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List actions, newest first."""
    with database_of().reading() as session:
        rows = [models.ActionDocument.of(a) for a in activity.list_actions(session, paging.PageRequest(limit)).items]
    print_rows(rows, as_json, ("id", "campaign_id", "name", "post_type", "callpower_campaign_id"))


@actions_app.command("map")
def actions_map(
    action_id: Annotated[int, typer.Argument(help="The action.")],
    callpower_campaign_id: Annotated[int, typer.Option("--callpower-campaign-id", min=1)],
) -> None:
    """Map a CallPower campaign to an action; its waiting calls are imported at once."""
    with database_of().writing() as session:
        _, released = operations.map_campaign(session, action_id, callpower_campaign_id)
    typer.echo(
        f"action {action_id} now receives CallPower campaign {callpower_campaign_id}; "
        f"{released} waiting call{'' if released == 1 else 's'} handed to the importer"
    )


@posts_app.command("list")
def posts_list(
    campaign_id: Annotated[int | None, typer.Option("--campaign-id", help="Only this campaign's.")] = None,
    status: Annotated[str | None, typer.Option(help="accepted, incomplete, ...")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List posts, newest first."""
    with database_of().reading() as session:
        rows = [
            models.PostDocument.of(p)
            for p in activity.list_posts(
                session, paging.PageRequest(limit), campaign_ids=one(campaign_id), statuses=one(status)
            ).items
        ]
    print_rows(rows, as_json, ("id", "type", "status", "campaign_id", "action_id", "northstar_id", "call_timestamp"))


@users_app.command("list")
def users_list(
    mobile: Annotated[str | None, typer.Option(help="Only the user with this number (any format).")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List users, newest first."""
    settings = settings_of_environment()
    mobiles = phones.mobile_filter([mobile], settings.default_region, name="--mobile") if mobile is not None else None
    with database_of(settings).reading() as session:
        rows = [
            models.UserDocument.of(u)
            for u in activity.list_users(session, paging.PageRequest(limit), mobiles=mobiles).items
        ]
    print_rows(rows, as_json, ("id", "mobile", "sms_status", "source", "created_at"))


@signups_app.command("list")
def signups_list(
    campaign_id: Annotated[int | None, typer.Option("--campaign-id", help="Only this campaign's.")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List signups, newest first."""
    with database_of().reading() as session:
        rows = [
            models.SignupDocument.of(s)
            for s in activity.list_signups(session, paging.PageRequest(limit), campaign_ids=one(campaign_id)).items
        ]
    print_rows(rows, as_json, ("id", "northstar_id", "campaign_id", "quantity", "source", "created_at"))
