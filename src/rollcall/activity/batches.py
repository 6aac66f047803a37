"""What the importer writes for a batch of calls: users found or registered by mobile, and
posts added on their actions and counted on each member's signup for the campaign.

Set-based statements sent straight to the driver, so a batch costs a few statements whatever
its size (docs/benchmarks.md, "The importer on two shapes of history").
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import SOURCE, SOURCE_DETAILS, Post, Signup, User, new_user_id
from rollcall.activity.service import ActionTarget
from rollcall.db import table_of
from rollcall.dialect import driver_json, driver_times, from_driver_time, insert_rows, named_rows
from rollcall.times import utcnow

_users, _signups, _posts = table_of(User), table_of(Signup), table_of(Post)
_USERS_BY_MOBILE = sa.select(_users.c.mobile, _users.c.id).where(
    _users.c.mobile.in_(sa.bindparam("mobiles", expanding=True))
)


@dataclass
class Registration:
    user_ids: dict[str, str]  # by E.164 mobile
    created: list[dict[str, Any]]  # the new users, as their columns


def register_users(session: Session, mobiles: Collection[str]) -> Registration:
    """The ids of the users with these E.164 mobiles, registering those who are new.

    Race-free: two importers meeting the same new mobile make one user (the unique mobile decides,
    and the loser reads the winner's row). A CallPower caller has not opted into SMS, so a new
    user starts with `sms_status = "stop"`.
    """
    wanted = set(mobiles)
    if not wanted:
        return Registration({}, [])
    connection = session.connection()
    found: dict[str, str] = dict(connection.execute(_USERS_BY_MOBILE, {"mobiles": list(wanted)}).all())
    new = sorted(wanted - found.keys())
    created: list[dict[str, Any]] = []
    if new:
        moment = utcnow()
        now = driver_times(session)(moment)
        offered = {mobile: _new_user(mobile, now) for mobile in new}
        rows = named_rows(_USER_COLUMNS, list(offered.values()))
        registered = dict(
            insert_rows(
                session, _users, _USER_COLUMNS, rows, returning=("mobile", "id"), conflict="ON CONFLICT DO NOTHING"
            )
        )
        found.update(registered)
        created = [{**offered[mobile], "created_at": moment, "updated_at": moment} for mobile in registered]
        raced = [mobile for mobile in new if mobile not in found]  # registered meanwhile by another importer
        if raced:
            found.update(connection.execute(_USERS_BY_MOBILE, {"mobiles": raced}).all())
    return Registration(found, created)


def _new_user(mobile: str, now: Any) -> dict[str, Any]:
    """A new caller's row (a CallPower caller has not opted into SMS)."""
    return {
        "id": new_user_id(),
        "mobile": mobile,
        "sms_status": "stop",
        "source": SOURCE,
        "source_detail": SOURCE_DETAILS,
        "created_at": now,
        "updated_at": now,
    }


def _new_signup(user_id: str, campaign_id: int, quantity: int, now: Any) -> dict[str, Any]:
    return {
        "northstar_id": user_id,
        "campaign_id": campaign_id,
        "quantity": quantity,
        "source": SOURCE,
        "source_details": SOURCE_DETAILS,
        "created_at": now,
        "updated_at": now,
    }


_USER_COLUMNS = tuple(_new_user("", None))
_SIGNUP_COLUMNS = tuple(_new_signup("", 0, 0, None))
_SIGNUP_READ = ("id", "northstar_id", "campaign_id", "quantity", "source", "source_details", "details", "created_at")
# The count is added in the statement that finds or makes the signup (see `add_posts`).
_COUNT_ON_SIGNUP = (
    "ON CONFLICT (northstar_id, campaign_id) DO UPDATE SET "
    "quantity = signups.quantity + excluded.quantity, updated_at = excluded.updated_at"
)


def _new_post(post: NewPost, signup_id: int, moment: dt.datetime) -> dict[str, Any]:
    """A post's row, by column."""
    return {
        "signup_id": signup_id,
        "campaign_id": post.action.campaign_id,
        "northstar_id": post.user_id,
        "action_id": post.action.id,
        "call_id": post.call_id,
        "type": post.action.post_type,
        "action": post.action.name,
        "quantity": post.quantity,
        "status": post.status,
        "source": SOURCE,
        "source_details": SOURCE_DETAILS,
        "details": post.details,
        "call_timestamp": post.call_timestamp,
        "created_at": moment,
        "updated_at": moment,
    }


class NewPost(NamedTuple):
    user_id: str
    action: ActionTarget
    status: str
    details: dict[str, Any]
    call_timestamp: dt.datetime | None
    call_id: int
    quantity: int = 1


_POST_COLUMNS = tuple(_new_post(NewPost("", ActionTarget(0, 0, "", ""), "", {}, None, 0), 0, utcnow()))


@dataclass
class Placement:
    placed: dict[int, tuple[int, int]]  # (signup id, post id) by call id
    posts: list[dict[str, Any]]  # the new posts, as their columns
    signups_created: list[dict[str, Any]]  # the signups made now, as their columns
    signups_counted: list[dict[str, Any]]  # the signups that were there, their quantity grown


def add_posts(session: Session, posts: Sequence[NewPost]) -> Placement:
    """Posts on their actions, counted on each user's signup for the campaign.

    A signup is made with the user's first post on the campaign. Its quantity is the sum of its
    posts' quantities, kept by adding them in the one statement that finds or makes the signup:
    that stays right when two importers add posts to one signup at once (a recomputed sum could
    miss the other's post), and two first posts still make one signup. A signup that the
    statement made has exactly the quantity offered; one that was there had at least one post
    already, so it has more.
    """
    if not posts:
        return Placement({}, [], [], [])
    time = driver_times(session)
    moment = utcnow()
    now = time(moment)
    added: collections.Counter[tuple[str, int]] = collections.Counter()
    for post in posts:
        added[(post.user_id, post.action.campaign_id)] += post.quantity
    # Rows in a stable order, so concurrent importers lock shared signups in the same order.
    signup_rows = named_rows(
        _SIGNUP_COLUMNS,
        [
            _new_signup(user_id, campaign_id, quantity, now)
            for (user_id, campaign_id), quantity in sorted(added.items())
        ],
    )
    counted = insert_rows(
        session, _signups, _SIGNUP_COLUMNS, signup_rows, returning=_SIGNUP_READ, conflict=_COUNT_ON_SIGNUP
    )
    signups = [{**dict(zip(_SIGNUP_READ, row, strict=True)), "updated_at": moment} for row in counted]
    created: list[dict[str, Any]] = []
    grown: list[dict[str, Any]] = []
    for signup in signups:
        signup["created_at"] = from_driver_time(signup["created_at"])
        made_now = signup["quantity"] == added[(signup["northstar_id"], signup["campaign_id"])]
        (created if made_now else grown).append(signup)
    signup_ids = {(signup["northstar_id"], signup["campaign_id"]): signup["id"] for signup in signups}
    new_posts = [_new_post(post, signup_ids[(post.user_id, post.action.campaign_id)], moment) for post in posts]
    driver_rows = named_rows(
        _POST_COLUMNS,
        [
            {**row, "details": driver_json(row["details"]), "call_timestamp": time(row["call_timestamp"])}
            | {"created_at": now, "updated_at": now}
            for row in new_posts
        ],
    )
    post_ids = dict(insert_rows(session, _posts, _POST_COLUMNS, driver_rows, returning=("call_id", "id")))
    for row in new_posts:
        row["id"] = post_ids[row["call_id"]]
    placed = {post["call_id"]: (post["signup_id"], post["id"]) for post in new_posts}
    return Placement(placed, new_posts, created, grown)
