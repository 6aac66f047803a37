"""Plain functions over a session: the rules of campaigns, actions, users, signups and posts.

The CLI, the HTTP API and the console all call these; none of them queries the tables itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

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
from rollcall.db import insert_ignoring_conflicts, utcnow
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
    blank = {
        name: [f"The {name.replace('_', ' ')} field is required."] for name, value in cleaned.items() if not value
    }
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


def action_for_callpower_campaign(session: Session, callpower_campaign_id: int) -> Action | None:
    return session.scalar(sa.select(Action).where(Action.callpower_campaign_id == callpower_campaign_id))


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


def get_or_create_user_id(session: Session, mobile: str) -> str:
    """The id of the user with this E.164 mobile, registering one if there is none.

    Race-free: two importers meeting the same new mobile make one user (the unique mobile decides).
    A CallPower caller has not opted into SMS, so a new user starts with `sms_status = "stop"`.
    """
    by_mobile = sa.select(User.id).where(User.mobile == mobile)
    user_id = session.scalar(by_mobile)
    if user_id is None:
        now = utcnow()
        session.execute(
            insert_ignoring_conflicts(session, User.__table__).values(
                id=new_user_id(),
                mobile=mobile,
                sms_status="stop",
                source=SOURCE,
                source_detail=SOURCE_DETAILS,
                created_at=now,
                updated_at=now,
            )
        )
        user_id = session.scalar(by_mobile)
    assert user_id is not None
    return user_id


def get_or_create_signup_id(session: Session, user_id: str, campaign_id: int) -> int:
    """The id of the user's signup for the campaign, made if there is none; race-free like users."""
    existing = sa.select(Signup.id).where(Signup.northstar_id == user_id, Signup.campaign_id == campaign_id)
    signup_id = session.scalar(existing)
    if signup_id is None:
        now = utcnow()
        session.execute(
            insert_ignoring_conflicts(session, Signup.__table__).values(
                northstar_id=user_id,
                campaign_id=campaign_id,
                quantity=0,
                source=SOURCE,
                source_details=SOURCE_DETAILS,
                created_at=now,
                updated_at=now,
            )
        )
        signup_id = session.scalar(existing)
    assert signup_id is not None
    return signup_id


def add_post(
    session: Session,
    *,
    signup_id: int,
    user_id: str,
    action: Action,
    status: str,
    details: dict[str, Any],
    call_timestamp: dt.datetime | None,
    call_id: int | None = None,
    quantity: int = 1,
) -> int:
    """A post on the action, counted on its signup; returns the post id.

    The signup's quantity is the sum of its posts' quantities. It is kept by adding each post's
    quantity in the same statement that locks the signup, which stays right when two importers
    add posts to one signup at once (a recomputed sum could miss the other's post).
    """
    now = utcnow()
    post_id = session.scalar(
        sa.insert(Post)
        .values(
            signup_id=signup_id,
            campaign_id=action.campaign_id,
            northstar_id=user_id,
            action_id=action.id,
            call_id=call_id,
            type=action.post_type,
            action=action.name,
            quantity=quantity,
            status=status,
            source=SOURCE,
            source_details=SOURCE_DETAILS,
            details=details,
            call_timestamp=call_timestamp,
            created_at=now,
            updated_at=now,
        )
        .returning(Post.id)
    )
    session.execute(
        sa.update(Signup)
        .where(Signup.id == signup_id)
        .values(quantity=Signup.quantity + quantity, updated_at=now)
    )
    assert post_id is not None
    return post_id


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
