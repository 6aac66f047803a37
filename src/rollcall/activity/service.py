"""Plain functions over a session: the rules of campaigns, actions, users, signups and posts.

The CLI, the HTTP API and the console all call these; none of them queries the tables itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import (
    ACTION_DEFAULTS,
    Action,
    Campaign,
    Post,
    Signup,
    User,
)
from rollcall.db import row_of, table_of
from rollcall.dialect import iso_from_driver_time
from rollcall.errors import InvalidInput
from rollcall.fields import is_missing, required
from rollcall.paging import Page, PageRequest, any_of, count, keyset_page
from rollcall.reports import figures
from rollcall.times import UnknownTimeZone, zone_name


def _required_text(fields: dict[str, Any]) -> dict[str, str]:
    """Trimmed values of required text fields, or `InvalidInput` naming every missing one."""
    missing = {name: [required(name)] for name, value in fields.items() if is_missing(value)}
    if missing:
        raise InvalidInput(missing)
    return {name: value.strip() for name, value in fields.items()}


# -- campaigns --------------------------------------------------------------------------------


def create_campaign(
    session: Session,
    *,
    internal_title: str,
    cause: str | None = None,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
    timezone: str | None = None,
) -> Campaign:
    title = _required_text({"internal_title": internal_title})["internal_title"]
    campaign = Campaign(
        internal_title=title, cause=cause, start_date=start_date, end_date=end_date, timezone=_zone(timezone)
    )
    session.add(campaign)
    session.flush()
    return campaign


def _zone(name: str | None) -> str | None:
    """A campaign's time zone, checked ("" is none)."""
    if not name:
        return None
    try:
        return zone_name(name)
    except UnknownTimeZone as error:
        raise InvalidInput({"timezone": [str(error)]}) from None


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    return row_of(session, Campaign, campaign_id, "campaign")


def update_campaign(session: Session, campaign_id: int, changes: dict[str, Any]) -> Campaign:
    """Change a campaign's fields (internal_title, cause, start_date, end_date, timezone: "" or
    None is none)."""
    campaign = get_campaign(session, campaign_id)
    if "internal_title" in changes:
        changes = {**changes, **_required_text({"internal_title": changes["internal_title"]})}
    if "timezone" in changes:
        changes = {**changes, "timezone": _zone(changes["timezone"])}
    kept_in = figures.zone_of_campaign
    rezoned = "timezone" in changes and kept_in(changes["timezone"]) != kept_in(campaign.timezone)
    for name, value in changes.items():
        setattr(campaign, name, value)
    session.flush()
    if rezoned:  # (its weekday-hours are kept in its zone: counted again, its row locked meanwhile)
        figures.rezone(session, campaign_id)
    return campaign


def campaign_titles(session: Session, campaign_ids: Collection[int]) -> dict[int, str]:
    """The titles of these campaigns, by id."""
    if not campaign_ids:
        return {}
    rows = session.execute(sa.select(Campaign.id, Campaign.internal_title).where(Campaign.id.in_(campaign_ids)))
    return {campaign_id: title for campaign_id, title in rows}


def list_campaigns(session: Session, page: PageRequest) -> Page[Campaign]:
    return keyset_page(session, sa.select(Campaign), [Campaign.id], page, lambda c: (c.id,))


def count_campaigns(session: Session) -> int:
    return count(session, sa.select(Campaign))


# -- actions ----------------------------------------------------------------------------------


def create_action(session: Session, *, campaign_id: int, name: str, **given: str) -> Action:
    """A new action on a campaign: its name, and any of `ACTION_DEFAULTS`' fields (the defaults
    for the rest). Its source campaign is set with `calls.service.map_campaign`."""
    fields = {**ACTION_DEFAULTS, **given}
    cleaned = _required_text({"name": name, "post_type": fields["post_type"]})
    get_campaign(session, campaign_id)
    action = Action(campaign_id=campaign_id, **{**fields, **cleaned})
    session.add(action)
    session.flush()
    return action


def get_action(session: Session, action_id: int) -> Action:
    return row_of(session, Action, action_id, "action")


class ActionTarget(NamedTuple):
    """What a post needs of its action (read on every import, so kept to a light row)."""

    id: int
    campaign_id: int
    post_type: str
    name: str


_actions = table_of(Action)
_ACTIONS_BY_CALLPOWER_ID = sa.select(
    _actions.c.callpower_campaign_id, _actions.c.id, _actions.c.campaign_id, _actions.c.post_type, _actions.c.name
).where(_actions.c.callpower_campaign_id.in_(sa.bindparam("ids", expanding=True)))


def actions_for_callpower_campaigns(session: Session, callpower_ids: Collection[int]) -> dict[int, ActionTarget]:
    """The actions that receive these CallPower campaigns' calls, by CallPower campaign id (unmapped: absent)."""
    if not callpower_ids:
        return {}
    rows = session.connection().execute(_ACTIONS_BY_CALLPOWER_ID, {"ids": list(callpower_ids)})
    return {row[0]: ActionTarget(*row[1:]) for row in rows}


def action_for_callpower_campaign(session: Session, callpower_campaign_id: int) -> ActionTarget | None:
    """The action that receives a CallPower campaign's calls, if any."""
    return actions_for_callpower_campaigns(session, (callpower_campaign_id,)).get(callpower_campaign_id)


def update_action(session: Session, action_id: int, changes: dict[str, Any]) -> Action:
    """Change an action's own fields. Its source campaign is changed with `calls.service.map_campaign`."""
    action = get_action(session, action_id)
    required: dict[str, Any] = {name: changes[name] for name in ("name", "post_type") if name in changes}
    changes = {**changes, **_required_text(required)}
    for name, value in changes.items():
        setattr(action, name, value)
    session.flush()
    return action


def _action_query(
    campaign_ids: Sequence[int] | None, callpower_campaign_ids: Sequence[int] | None, unmapped: bool
) -> sa.Select[Any]:
    query = sa.select(Action).where(
        *any_of(Action.campaign_id, campaign_ids), *any_of(Action.callpower_campaign_id, callpower_campaign_ids)
    )
    return query.where(Action.callpower_campaign_id.is_(None)) if unmapped else query


def list_actions(
    session: Session,
    page: PageRequest,
    *,
    campaign_ids: Sequence[int] | None = None,
    callpower_campaign_ids: Sequence[int] | None = None,
    unmapped: bool = False,
) -> Page[Action]:
    """Actions, newest first; `unmapped`: only those no source campaign feeds yet."""
    query = _action_query(campaign_ids, callpower_campaign_ids, unmapped)
    return keyset_page(session, query, [Action.id], page, lambda a: (a.id,))


def count_actions(session: Session, *, unmapped: bool = False) -> int:
    return count(session, _action_query(None, None, unmapped))


# -- users, signups, posts --------------------------------------------------------------------


def get_user(session: Session, user_id: str) -> User:
    return row_of(session, User, user_id, "user")


def list_users(session: Session, page: PageRequest, *, mobiles: Sequence[str] | None = None) -> Page[User]:
    """Users, newest first (by creation; their ids are opaque)."""
    query = sa.select(User).where(*any_of(User.mobile, mobiles))
    return keyset_page(session, query, [User.created_at, User.id], page, lambda u: (u.created_at, u.id))


def mobiles_of_users(session: Session, user_ids: Collection[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    return dict(session.execute(sa.select(User.id, User.mobile).where(User.id.in_(list(user_ids)))).all())


def get_signup(session: Session, signup_id: int) -> Signup:
    return row_of(session, Signup, signup_id, "signup")


def list_signups(
    session: Session,
    page: PageRequest,
    *,
    campaign_ids: Sequence[int] | None = None,
    northstar_ids: Sequence[str] | None = None,
) -> Page[Signup]:
    query = sa.select(Signup).where(
        *any_of(Signup.campaign_id, campaign_ids), *any_of(Signup.northstar_id, northstar_ids)
    )
    return keyset_page(session, query, [Signup.id], page, lambda s: (s.id,))


def newest_posts_of_signups(session: Session, signup_ids: Sequence[int], limit: int) -> dict[int, Page[Post]]:
    """Each signup's newest `limit` posts, a keyset page of its own (its `next` leads to the rest):
    a member who calls every day has thousands on one signup."""
    return {
        signup_id: list_posts(session, PageRequest(limit=limit), signup_ids=[signup_id]) for signup_id in signup_ids
    }


def get_post(session: Session, post_id: int) -> Post:
    return row_of(session, Post, post_id, "post")


def list_posts(
    session: Session,
    page: PageRequest,
    *,
    campaign_ids: Sequence[int] | None = None,
    action_ids: Sequence[int] | None = None,
    northstar_ids: Sequence[str] | None = None,
    signup_ids: Sequence[int] | None = None,
    types: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    call_timestamp_gte: dt.datetime | None = None,
    call_timestamp_lt: dt.datetime | None = None,
) -> Page[Post]:
    """Posts, newest first; each filter narrows, and a filter's several values mean any of them."""
    query = sa.select(Post).where(
        *any_of(Post.campaign_id, campaign_ids),
        *any_of(Post.signup_id, signup_ids),
        *any_of(Post.action_id, action_ids),
        *any_of(Post.northstar_id, northstar_ids),
        *any_of(Post.type, types),
        *any_of(Post.status, statuses),
        *any_of(Post.source, sources),
    )
    if call_timestamp_gte is not None:
        query = query.where(Post.call_timestamp >= call_timestamp_gte)
    if call_timestamp_lt is not None:
        query = query.where(Post.call_timestamp < call_timestamp_lt)
    return keyset_page(session, query, [Post.id], page, lambda p: (p.id,))


class ExportedPost(NamedTuple):
    id: int
    created_at: str | None  # ISO-8601 UTC, as `times.iso_utc` writes it
    call_timestamp: str | None
    status: str
    quantity: int
    type: str
    action: str
    action_id: int
    northstar_id: str
    call_id: int | None
    details: dict[str, Any]


# Read as the driver gives them (times written out and details decoded in `posts_for_export`):
# for the hundreds of thousands of rows of an export, SQLAlchemy's objects and its SQLite time
# parsing cost most of the time (docs/benchmarks.md, "Pages at 10 million calls").
_EXPORTED = sa.select(
    Post.id,
    sa.type_coerce(Post.created_at, sa.String),
    sa.type_coerce(Post.call_timestamp, sa.String),
    Post.status,
    Post.quantity,
    Post.type,
    Post.action,
    Post.action_id,
    Post.northstar_id,
    Post.call_id,
    sa.type_coerce(Post.details, sa.Text),
).where(Post.campaign_id == sa.bindparam("campaign"), Post.id < sa.bindparam("before", type_=sa.BigInteger))


def posts_for_export(session: Session, campaign_id: int, *, before: int | None, limit: int) -> list[ExportedPost]:
    """A campaign's posts older than the post `before` (None: from the newest), newest first, a
    keyset page on (campaign_id, id)."""
    rows = (
        session.connection()
        .execute(
            _EXPORTED.order_by(Post.id.desc()).limit(limit),
            {"campaign": campaign_id, "before": before if before is not None else 2**62},
        )
        .all()
    )  # in one fetch (iterating the result fetched a row at a time)
    return [
        ExportedPost._make(
            (
                id_,
                iso_from_driver_time(created),
                iso_from_driver_time(called),
                *middle,
                (orjson.loads(details) if isinstance(details, str | bytes) else details) or {},
            )
        )
        for id_, created, called, *middle, details in rows
    ]
