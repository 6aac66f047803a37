"""The import of one stored call: the reference's steps 1-7, in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.callpower.models import CallState, ClaimedCall, ImportOutcome
from rollcall.callpower.record import parse_call
from rollcall.db import lock_callpower_campaign


def import_call(session: Session, call: ClaimedCall) -> ImportOutcome:
    """Turn a stored call into a user, a signup and a post, or say why it cannot be.

    Everything happens in the caller's transaction, so a crash part-way leaves nothing behind, and
    the post's unique `call_id` makes a second import of the same call fail rather than double it.
    """
    # The stored record was validated and normalized at intake (mobile already in E.164).
    record = parse_call(call.record)
    if record.is_anonymous:
        return ImportOutcome(CallState.DISCARDED)

    action = activity.action_for_callpower_campaign(session, record.callpower_campaign_id)
    if action is None:
        # Look again under the campaign's lock: a mapping committed meanwhile must be seen here,
        # or its release of parked calls must come after this call is parked.
        lock_callpower_campaign(session, record.callpower_campaign_id)
        action = activity.action_for_callpower_campaign(session, record.callpower_campaign_id)
        if action is None:
            return ImportOutcome(CallState.UNMAPPED)

    user_id = activity.get_or_create_user_id(session, record.mobile)
    signup_id, post_id = activity.add_post(
        session,
        user_id=user_id,
        action=action,
        status="accepted" if record.is_completed else "incomplete",
        details=record.post_details(),
        call_timestamp=record.call_timestamp,
        call_id=call.id,
    )
    return ImportOutcome(CallState.IMPORTED, user_id=user_id, signup_id=signup_id, post_id=post_id)
