"""What a stored call becomes: the reference's steps 1-7, in the caller's transaction.

`import_calls` takes a batch (one call or many) and works set-wise (a few statements per batch,
whatever its size). There is one implementation of the rules, here; what a record means (who
called, which campaign, how it went) is its source's to say (`Source.facts`). What it makes is
also told as events (`user.created`, `signup.created`, `signup.updated`, `post.created`),
written by the caller in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from rollcall.activity import batches
from rollcall.activity import service as activity
from rollcall.calls.models import CallState, ClaimedCall, ImportOutcome
from rollcall.calls.source import CallFacts, Source
from rollcall.dialect import lock_campaign
from rollcall.events import EventType, NewEvent
from rollcall.reports import figures
from rollcall.times import iso_utc


@dataclass
class Imported:
    outcomes: list[ImportOutcome]  # one per call, in order
    events: list[NewEvent]


def import_calls(session: Session, calls: Sequence[ClaimedCall], source: Source) -> Imported:
    """Turn stored calls into users, signups and posts, or say why each cannot be.

    Everything happens in the caller's transaction, so a failure part-way leaves nothing
    behind, and the post's unique `call_id` makes a second import of the same call fail rather
    than double it.
    """
    # The stored records were validated and normalized at intake (mobiles already in E.164).
    records = [source.facts(call.record) for call in calls]
    members = [record for record in records if not record.anonymous]

    wanted = {record.campaign_id for record in members}
    actions = activity.actions_for_callpower_campaigns(session, wanted)
    for campaign_id in sorted(wanted - actions.keys()):
        # Look again under the campaign's lock: a mapping committed meanwhile must be seen here,
        # or its release of parked calls must come after these calls are parked.
        lock_campaign(session, campaign_id)
        action = activity.action_for_callpower_campaign(session, campaign_id)
        if action is not None:
            actions[campaign_id] = action

    mapped = [record for record in members if record.campaign_id in actions]
    registration = batches.register_users(session, {record.mobile for record in mapped})
    user_ids = registration.user_ids
    placement = batches.add_posts(
        session,
        [
            batches.NewPost(
                user_id=user_ids[record.mobile],
                action=actions[record.campaign_id],
                status="accepted" if record.completed else "incomplete",
                details=record.details,
                call_timestamp=record.call_timestamp,
                call_id=call.id,
            )
            for call, record in zip(calls, records, strict=True)
            if not record.anonymous and record.campaign_id in actions
        ],
    )

    _count_results(calls, records, actions, registration, placement, session)

    outcomes = []
    for call, record in zip(calls, records, strict=True):
        if record.anonymous:
            outcomes.append(ImportOutcome(CallState.DISCARDED))
        elif record.campaign_id not in actions:
            outcomes.append(ImportOutcome(CallState.UNMAPPED))
        else:
            signup_id, post_id = placement.placed[call.id]
            outcomes.append(
                ImportOutcome(CallState.IMPORTED, user_id=user_ids[record.mobile], signup_id=signup_id, post_id=post_id)
            )
    return Imported(outcomes, _events(registration, placement))


def _count_results(
    calls: Sequence[ClaimedCall],
    records: Sequence[CallFacts],
    actions: dict[int, activity.ActionTarget],
    registration: batches.Registration,
    placement: batches.Placement,
    session: Session,
) -> None:
    """The posts made, in the campaign results (`reports.figures`): each in its call's quarter
    hour; a member registered now is new on their first post (the lowest id: all their posts are
    in this batch)."""
    placed, user_ids = placement.placed, registration.user_ids
    posts = [(record, placed[call.id][1]) for call, record in zip(calls, records, strict=True) if call.id in placed]
    created = {user["id"] for user in registration.created}
    first: dict[str, int] = {}
    for record, post_id in posts:
        user_id = user_ids[record.mobile]
        if user_id in created and post_id < first.get(user_id, post_id + 1):
            first[user_id] = post_id
    counted = [
        figures.Counted(
            post_id=post_id,
            campaign_id=actions[record.campaign_id].campaign_id,
            action_id=actions[record.campaign_id].id,
            source_campaign_id=record.campaign_id,
            user_id=user_ids[record.mobile],
            call_timestamp=record.call_timestamp,
            outcome=figures.outcome_of(record.status),
            seconds=record.seconds,
            target=figures.Target.of(*record.target),
            new_member=first.get(user_ids[record.mobile]) == post_id,
        )
        for record, post_id in posts
        if record.call_timestamp is not None
    ]
    figures.count_posts(session, counted)


def _events(registration: batches.Registration, placement: batches.Placement) -> list[NewEvent]:
    """What the batch made, as events: each new user, each signup made or counted (with its
    quantity then), each post."""
    return [
        *((EventType.USER_CREATED, user["id"], None) for user in registration.created),
        *((EventType.SIGNUP_CREATED, signup["id"], _counted(signup)) for signup in placement.signups_created),
        *((EventType.SIGNUP_UPDATED, signup["id"], _counted(signup)) for signup in placement.signups_counted),
        *((EventType.POST_CREATED, post["id"], None) for post in placement.posts),
    ]


def _counted(signup: dict[str, Any]) -> dict[str, Any]:
    return {"quantity": signup["quantity"], "updated_at": iso_utc(signup["updated_at"])}
