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
import structlog
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from rollcall.activity.models import Post, PostDocument, Signup, SignupDocument, User, UserDocument
from rollcall.activity.service import get_user
from rollcall.calls import statistics
from rollcall.calls.dedup import dedup_secret
from rollcall.calls.models import SEEN_BY_IMPORTER, Call, CallDocument, CallState
from rollcall.db import Database, table_of
from rollcall.events import CALL_EVENTS, Event, EventType, record_events
from rollcall.members import audit, ledger
from rollcall.reports import figures
from rollcall.times import iso_utc, utcnow

_events = table_of(Event)
log = structlog.get_logger("rollcall.members")
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


def erase_member(session: Session, user_id: str) -> tuple[Erased, ledger.Entry]:
    """Erase the member in the caller's transaction (see the module's docstring) and write it in
    the erasure ledger; `NotFound` for an unknown id. Emits `user.erased` with the id only."""
    user = get_user(session, user_id)
    erased, calls = _erase(session, user_id, user, _call_ids(session, user))
    entry = ledger.new_entry(user_id, ledger.mobile_hash(dedup_secret(session), user.mobile), calls, utcnow())
    ledger.record(session, entry)
    return erased, entry


def erase_again(session: Session, entry: ledger.Entry) -> Erased | None:
    """Apply a ledger entry this database lacks (it was restored from a backup taken before the
    erasure), in the caller's transaction: the member (if the backup holds them) and every call
    of theirs it holds are erased, and each call of theirs it never held is stored as an `erased`
    call, so that CallPower sending it again makes nothing. None if the entry is applied already."""
    if ledger.is_recorded(session, entry.id):
        return None
    user = session.get(User, entry.user_id)
    call_ids = set(_call_ids(session, user)) if user is not None else _unclaimed_calls(session, entry.mobile_hash)
    by_key = {call.dedup_key: call for call in entry.calls}
    held: set[str] = set()
    keys = sorted(by_key)
    for start in range(0, len(keys), CHUNK):
        for key, call_id in session.execute(
            sa.select(Call.dedup_key, Call.id).where(Call.dedup_key.in_(keys[start : start + CHUNK]))
        ):
            held.add(str(key))
            call_ids.add(call_id)
    erased, _ = _erase(session, entry.user_id, user, sorted(call_ids))
    now = utcnow()
    never_held = [call for key, call in by_key.items() if key not in held]
    if never_held:
        session.execute(
            sa.insert(Call),
            [
                {
                    "state": CallState.ERASED,
                    "dedup_key": call.dedup_key,
                    "received_at": call.received_at,
                    "updated_at": now,
                    "raw": "",
                    "callpower_campaign_id": call.callpower_campaign_id,
                    "call_timestamp": call.call_timestamp,
                    "attempts": 0,
                }
                for call in never_held
            ],
        )
        statistics.count(
            session, [(call.callpower_campaign_id, call.received_at, CallState.ERASED, 1) for call in never_held]
        )
    ledger.record(session, entry)
    return erased.model_copy(update={"calls": erased.calls + len(never_held)})


# Calls that hold a number but no member: those a member erased later may have made.
_UNCLAIMED = (CallState.REJECTED, CallState.RECEIVED, CallState.UNMAPPED, CallState.FAILED, CallState.DEAD)


def _unclaimed_calls(session: Session, digest: str | None) -> set[int]:
    """Calls of a number (known by its keyed hash only) that no member holds: found by hashing
    the numbers of the calls that are not a member's (rejected and waiting ones; few)."""
    if digest is None:
        return set()
    secret = dedup_secret(session)
    rows = session.execute(sa.select(Call.id, Call.mobile).where(Call.state.in_(_UNCLAIMED), Call.mobile.is_not(None)))
    return {call_id for call_id, mobile in rows if ledger.mobile_hash(secret, mobile) == digest}


def _erase(
    session: Session, user_id: str, user: User | None, call_ids: list[int]
) -> tuple[Erased, list[ledger.ErasedCall]]:
    """Remove the user (if there is one) with their signups and posts, scrub the calls; what
    was erased, and the ledger's record of each call."""
    posts = signups = 0
    if user is not None:
        figures.uncount_member(session, user.id, figures.member_quarters(session, user.id))
        posts = session.execute(sa.delete(Post).where(Post.northstar_id == user.id)).rowcount  # type: ignore[attr-defined]
        signups = session.execute(sa.delete(Signup).where(Signup.northstar_id == user.id)).rowcount  # type: ignore[attr-defined]
    now = utcnow()
    events = 0
    recorded: list[ledger.ErasedCall] = []
    for start in range(0, len(call_ids), CHUNK):
        chunk = call_ids[start : start + CHUNK]
        before = session.execute(
            sa.select(
                Call.callpower_campaign_id,
                Call.received_at,
                Call.state,
                Call.errors,
                Call.dedup_key,
                Call.call_timestamp,
            )
            .where(Call.id.in_(chunk))
            .with_for_update()
        ).all()
        statistics.moved(session, [(campaign, at, state, CallState.ERASED) for campaign, at, state, *_ in before])
        statistics.count_rejections(
            session,
            [(campaign, at, errors, -1) for campaign, at, state, errors, *_ in before if state == CallState.REJECTED],
        )
        recorded.extend(
            ledger.ErasedCall(key, campaign, at, moment) for campaign, at, _, _, key, moment in before if key
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
    if user is not None:
        session.delete(user)
        session.flush()
        record_events(session, [(EventType.USER_ERASED, user_id, {"id": user_id})])
    erased = Erased(user_id=user_id, signups=signups, posts=posts, calls=len(call_ids), events=events)
    return erased, recorded


def erase(database: Database, user_id: str, actor: str) -> Erased:
    """The use case: erase the member and record who did (one transaction), then leave nothing
    of it in SQLite's log. `NotFound` for an unknown id."""
    with database.erasing() as session:
        erased, entry = erase_member(session, user_id)
        audit.record(session, actor, "member.erased", user_id, erased.model_dump())
    database.checkpoint()
    write_down(database, [entry])
    return erased


def write_down(database: Database, entries: list[ledger.Entry]) -> None:
    """Append erasures to the ledger file in the backup directory (if one is set). A failure is
    logged, not raised: the erasure is done and in the database's ledger, and the next backup
    or start appends what the file lacks (`backups.reconcile`)."""
    directory = database.settings.backup_dir
    if not directory or not entries:
        return
    try:
        ledger.append(directory, entries)
    except OSError as error:
        log.error("erasure_ledger.append_failed", error=type(error).__name__, detail=error.strerror)


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
