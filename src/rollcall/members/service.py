"""Members' data: everything rollcall holds about one member, exported whole or erased.

A member is a user and what was theirs: their signups and posts, and the stored calls made from
their number (imported ones name the user; calls not imported, rejected, unmapped or waiting,
are found by their number, exactly as the intake's normalizer reads it). An erasure removes the
user, signups and posts, and scrubs those calls in the same transaction: the body, the record,
the number, errors and repairs are gone; the row keeps its id, campaign, time and de-duplication
key, in state `erased`, so counts stay honest and a call CallPower sends again (it replays
history) is recognised and recreates nothing. A new call from the same number afterwards is new
activity and makes a new user.

Events keep no copy of a member's data (`events`), except the operators' `call.*` events, which
hold the call as it was: those of the erased calls are scrubbed too. `user.erased` tells
downstream systems to erase the member on their side.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from rollcall.activity.models import Post, PostDocument, Signup, SignupDocument, User, UserDocument
from rollcall.activity.service import get_user
from rollcall.calls import statistics
from rollcall.calls.models import SEEN_BY_IMPORTER, Call, CallDocument, CallState
from rollcall.db import Database, table_of
from rollcall.events import CALL_EVENTS, Event, EventType, record_events
from rollcall.members import audit
from rollcall.reports import figures
from rollcall.times import iso_utc, utcnow

_events = table_of(Event)
CHUNK = 500  # call ids per statement


class Erased(BaseModel):
    """What an erasure removed."""

    user_id: str
    signups: int = Field(description="Signups removed.")
    posts: int = Field(description="Posts removed.")
    calls: int = Field(description="Stored calls scrubbed (state `erased`: id, campaign and time kept).")
    events: int = Field(description="Operators' call events scrubbed.")


class MemberExport(BaseModel):
    """Everything held about a member, in one document."""

    user: UserDocument
    signups: list[SignupDocument]
    posts: list[PostDocument]
    calls: list[CallDocument] = Field(description="Their stored calls as received, with states and repairs.")
    exported_at: str


def _call_ids(session: Session, user: User) -> list[int]:
    """The member's stored calls: imported ones by the user, the others by the number, exactly.

    Every stored call keeps its mobile as the intake's normalizer reads it (E.164): a valid
    call's from its record, a rejected one's from its body whatever its formatting, even a body
    that could not be decoded whole (`deliveries.mobile_in_text`). Never a part of a number, and
    never another field: a call that only mentions the member's number (as the number dialed, or
    inside a longer one) is someone else's. The partial index on mobiles holds calls the importer
    has seen (rejected ones included); calls still waiting are few and found by state."""
    queries = [
        sa.select(Call.id).where(Call.user_id == user.id),
        sa.select(Call.id).where(Call.mobile == user.mobile, sa.text(SEEN_BY_IMPORTER)),
        sa.select(Call.id).where(Call.state == CallState.RECEIVED, Call.mobile == user.mobile),
    ]
    found: set[int] = set()
    for query in queries:
        found.update(session.scalars(query))
    return sorted(found)


def export_member(session: Session, user_id: str) -> dict[str, Any]:
    """One document with everything held about the member: the user, signups, posts, and their
    calls as received, with their states and repairs. `NotFound` for an unknown (or erased) id."""
    user = get_user(session, user_id)
    signups = session.scalars(sa.select(Signup).where(Signup.northstar_id == user.id).order_by(Signup.id))
    posts = session.scalars(sa.select(Post).where(Post.northstar_id == user.id).order_by(Post.id))
    calls = session.scalars(sa.select(Call).where(Call.id.in_(_call_ids(session, user))).order_by(Call.id))
    return {
        "user": UserDocument.of(user),
        "signups": [SignupDocument.of(signup) for signup in signups],
        "posts": [PostDocument.of(post) for post in posts],
        "calls": [CallDocument.of(call) for call in calls],
        "exported_at": iso_utc(utcnow()),
    }


def erase_member(session: Session, user_id: str) -> Erased:
    """Erase the member in the caller's transaction (see the module's docstring); `NotFound`
    for an unknown id. Emits `user.erased` with the id only."""
    user = get_user(session, user_id)
    call_ids = _call_ids(session, user)
    made = session.execute(sa.select(Post.campaign_id, Post.call_timestamp).where(Post.northstar_id == user.id))
    figures.uncount_member(
        session, user.id, {(campaign, figures.quarter_of(moment)) for campaign, moment in made if moment is not None}
    )
    posts: int = session.execute(sa.delete(Post).where(Post.northstar_id == user.id)).rowcount  # type: ignore[attr-defined]
    signups: int = session.execute(sa.delete(Signup).where(Signup.northstar_id == user.id)).rowcount  # type: ignore[attr-defined]
    now = utcnow()
    events = 0
    for start in range(0, len(call_ids), CHUNK):
        chunk = call_ids[start : start + CHUNK]
        before = session.execute(
            sa.select(Call.callpower_campaign_id, Call.received_at, Call.state, Call.errors)
            .where(Call.id.in_(chunk))
            .with_for_update()
        ).all()
        statistics.moved(session, [(campaign, at, state, CallState.ERASED) for campaign, at, state, _ in before])
        statistics.count_rejections(
            session,
            [(campaign, at, errors, -1) for campaign, at, state, errors in before if state == CallState.REJECTED],
        )
        session.execute(
            sa.update(Call)
            .where(Call.id.in_(chunk))
            .values(
                state=CallState.ERASED,
                raw="",
                content_type=None,
                record=None,
                errors=None,
                mobile=None,
                last_error=None,
                next_attempt_at=None,
                user_id=None,
                signup_id=None,
                post_id=None,
                repairs=None,
                defaulted=None,
                duplicate_of=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        kept = session.execute(
            sa.select(Event.id, Event.subject).where(
                Event.type.in_(CALL_EVENTS), Event.subject.in_([str(call_id) for call_id in chunk])
            )
        ).all()
        if kept:
            session.execute(
                sa.update(_events)
                .where(_events.c.id == sa.bindparam("event_id"))
                .values(data=sa.bindparam("scrubbed")),
                [{"event_id": number, "scrubbed": {"id": int(subject), "erased": True}} for number, subject in kept],
            )
        events += len(kept)
    session.delete(user)
    session.flush()
    record_events(session, [(EventType.USER_ERASED, user_id, {"id": user_id})])
    return Erased(user_id=user_id, signups=signups, posts=posts, calls=len(call_ids), events=events)


def erase(database: Database, user_id: str, actor: str) -> Erased:
    """The use case: erase the member and record who did (one transaction), then leave nothing
    of it in SQLite's log. `NotFound` for an unknown id."""
    with database.erasing() as session:
        erased = erase_member(session, user_id)
        audit.record(session, actor, "member.erased", user_id, erased.model_dump())
    database.checkpoint()
    return erased


def export(database: Database, user_id: str, actor: str) -> dict[str, Any]:
    """The use case: the member's document, and who asked for it in the audit log."""
    with database.writing() as session:
        document = export_member(session, user_id)
        audit.record(
            session,
            actor,
            "member.exported",
            user_id,
            {"signups": len(document["signups"]), "posts": len(document["posts"]), "calls": len(document["calls"])},
        )
    return document
