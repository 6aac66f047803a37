"""Plain functions over a session: the rules of campaigns, actions, users, signups and posts.

The CLI, the HTTP API and the console all call these; none of them queries the tables itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import (
    PHONE_CALL,
    SOURCE,
    SOURCE_DETAILS,
    Action,
    Campaign,
    Post,
    Signup,
    User,
    new_user_id,
)
from rollcall.db import insert_ignoring_conflicts, insert_or_add, utcnow
from rollcall.errors import InvalidInput, NotFound

DEFAULT_LIMIT = 20


class UnknownCampaign(NotFound):
    def __init__(self, campaign_id: object) -> None:
        super().__init__("campaign", campaign_id)


class UnknownAction(NotFound):
    def __init__(self, action_id: object) -> None:
        super().__init__("action", action_id)


def _required_text(fields: dict[str, Any]) -> dict[str, str]:
    """Trimmed values of required text fields, or `InvalidInput` naming every blank one."""
    cleaned = {name: (value or "").strip() for name, value in fields.items()}
    blank = {name: [f"The {name.replace('_', ' ')} field is required."] for name, value in cleaned.items() if not value}
    if blank:
        raise InvalidInput(blank)
    return cleaned


# -- campaigns --------------------------------------------------------------------------------


def create_campaign(
    session: Session,
    *,
    internal_title: str,
    cause: str | None = None,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
) -> Campaign:
    title = _required_text({"internal_title": internal_title})["internal_title"]
    campaign = Campaign(internal_title=title, cause=cause, start_date=start_date, end_date=end_date)
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise UnknownCampaign(campaign_id)
    return campaign


def list_campaigns(session: Session, *, limit: int = DEFAULT_LIMIT, before_id: int | None = None) -> Sequence[Campaign]:
    query = sa.select(Campaign).order_by(Campaign.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Campaign.id < before_id)
    return session.scalars(query).all()


# -- actions ----------------------------------------------------------------------------------


def create_action(
    session: Session,
    *,
    campaign_id: int,
    name: str,
    post_type: str = PHONE_CALL,
    action_type: str = "make-call",
    noun: str = "calls",
    verb: str = "completed",
) -> Action:
    """A new action on a campaign. Its CallPower campaign is set with `callpower.service.map_campaign`."""
    cleaned = _required_text({"name": name, "post_type": post_type})
    get_campaign(session, campaign_id)
    action = Action(
        campaign_id=campaign_id,
        name=cleaned["name"],
        post_type=cleaned["post_type"],
        action_type=action_type,
        noun=noun,
        verb=verb,
    )
    session.add(action)
    session.flush()
    return action


def get_action(session: Session, action_id: int) -> Action:
    action = session.get(Action, action_id)
    if action is None:
        raise UnknownAction(action_id)
    return action


class ActionTarget(NamedTuple):
    """What a post needs of its action (read on every import, so kept to a light row)."""

    id: int
    campaign_id: int
    post_type: str
    name: str


_actions = Action.__table__
_ACTION_BY_CALLPOWER_ID = sa.select(_actions.c.id, _actions.c.campaign_id, _actions.c.post_type, _actions.c.name).where(
    _actions.c.callpower_campaign_id == sa.bindparam("callpower_campaign_id")
)


def action_for_callpower_campaign(session: Session, callpower_campaign_id: int) -> ActionTarget | None:
    """The action that receives a CallPower campaign's calls, if any."""
    row = (
        session.connection().execute(_ACTION_BY_CALLPOWER_ID, {"callpower_campaign_id": callpower_campaign_id}).first()
    )
    return ActionTarget(*row) if row is not None else None


def list_actions(
    session: Session,
    *,
    campaign_id: int | None = None,
    callpower_campaign_id: int | None = None,
    limit: int = DEFAULT_LIMIT,
    before_id: int | None = None,
) -> Sequence[Action]:
    query = sa.select(Action).order_by(Action.id.desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(Action.campaign_id == campaign_id)
    if callpower_campaign_id is not None:
        query = query.where(Action.callpower_campaign_id == callpower_campaign_id)
    if before_id is not None:
        query = query.where(Action.id < before_id)
    return session.scalars(query).all()


# -- users, signups, posts --------------------------------------------------------------------


# The import path runs these statements for every call: they are built once, with bound
# parameters, and run on the session's connection (no ORM bookkeeping on the hot path).
_users, _signups, _posts = User.__table__, Signup.__table__, Post.__table__
_USER_ID_BY_MOBILE = sa.select(_users.c.id).where(_users.c.mobile == sa.bindparam("mobile"))
_INSERT_POST = sa.insert(_posts).returning(_posts.c.id)


def get_or_create_user_id(session: Session, mobile: str) -> str:
    """The id of the user with this E.164 mobile, registering one if there is none.

    Race-free: two importers meeting the same new mobile make one user (the unique mobile decides).
    A CallPower caller has not opted into SMS, so a new user starts with `sms_status = "stop"`.
    """
    connection = session.connection()
    user_id = connection.execute(_USER_ID_BY_MOBILE, {"mobile": mobile}).scalar()
    if user_id is None:
        now = utcnow()
        user_id = connection.execute(
            insert_ignoring_conflicts(session, _users).returning(_users.c.id),
            {
                "id": new_user_id(),
                "mobile": mobile,
                "sms_status": "stop",
                "source": SOURCE,
                "source_detail": SOURCE_DETAILS,
                "created_at": now,
                "updated_at": now,
            },
        ).scalar()
        if user_id is None:  # another importer registered this mobile a moment ago
            user_id = connection.execute(_USER_ID_BY_MOBILE, {"mobile": mobile}).scalar_one()
    return str(user_id)


def add_post(
    session: Session,
    *,
    user_id: str,
    action: ActionTarget,
    status: str,
    details: dict[str, Any],
    call_timestamp: dt.datetime | None,
    call_id: int | None = None,
    quantity: int = 1,
) -> tuple[int, int]:
    """A post on the action, counted on the user's signup for its campaign; returns (signup id, post id).

    The signup is made on the user's first post for the campaign. Its quantity is the sum of its
    posts' quantities, kept by adding each post's quantity in the statement that finds or makes
    the signup: that stays right when two importers add posts to one signup at once, where a
    recomputed sum could miss the other's post, and two first posts still make one signup.
    """
    connection = session.connection()
    now = utcnow()
    signup_id = connection.execute(
        insert_or_add(session, _signups, ("northstar_id", "campaign_id"), "quantity"),
        {
            "northstar_id": user_id,
            "campaign_id": action.campaign_id,
            "quantity": quantity,
            "source": SOURCE,
            "source_details": SOURCE_DETAILS,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    post_id = connection.execute(
        _INSERT_POST,
        {
            "signup_id": signup_id,
            "campaign_id": action.campaign_id,
            "northstar_id": user_id,
            "action_id": action.id,
            "call_id": call_id,
            "type": action.post_type,
            "action": action.name,
            "quantity": quantity,
            "status": status,
            "source": SOURCE,
            "source_details": SOURCE_DETAILS,
            "details": details,
            "call_timestamp": call_timestamp,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    return int(signup_id), int(post_id)


def list_users(session: Session, *, mobile: str | None = None, limit: int = DEFAULT_LIMIT) -> Sequence[User]:
    query = sa.select(User).order_by(User.created_at.desc(), User.id.desc()).limit(limit)
    if mobile is not None:
        query = query.where(User.mobile == mobile)
    return session.scalars(query).all()


def list_signups(
    session: Session,
    *,
    campaign_id: int | None = None,
    user_id: str | None = None,
    limit: int = DEFAULT_LIMIT,
    before_id: int | None = None,
) -> Sequence[Signup]:
    query = sa.select(Signup).order_by(Signup.id.desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(Signup.campaign_id == campaign_id)
    if user_id is not None:
        query = query.where(Signup.northstar_id == user_id)
    if before_id is not None:
        query = query.where(Signup.id < before_id)
    return session.scalars(query).all()


def list_posts(
    session: Session,
    *,
    campaign_id: int | None = None,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
    before_id: int | None = None,
) -> Sequence[Post]:
    query = sa.select(Post).order_by(Post.id.desc()).limit(limit)
    if campaign_id is not None:
        query = query.where(Post.campaign_id == campaign_id)
    if status is not None:
        query = query.where(Post.status == status)
    if before_id is not None:
        query = query.where(Post.id < before_id)
    return session.scalars(query).all()
