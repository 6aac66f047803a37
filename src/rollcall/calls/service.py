"""The stored calls as operators reach them: one by id and lists (by state, campaign, mobile);
sending failed, dead and unmapped calls back to the importer; mapping a source's campaign to an
action (which releases its waiting calls). Each use case is one function, called alike by the
API, the CLI and the console; released calls wake the importer through `queue.announce_calls`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity import service as activity
from rollcall.activity.models import Action
from rollcall.calls import statistics
from rollcall.calls.models import PARKED, RETRYABLE_STATES, SEEN_BY_IMPORTER, Call, CallState
from rollcall.calls.signals import announce_calls
from rollcall.db import row_of
from rollcall.dialect import lock_campaign, rarely
from rollcall.errors import Conflict
from rollcall.paging import Page, PageRequest, any_of, keyset_page
from rollcall.times import utcnow


def get_call(session: Session, call_id: int, *, for_update: bool = False) -> Call:
    return row_of(session, Call, call_id, "call", for_update=for_update)


def list_calls(
    session: Session,
    page: PageRequest,
    *,
    states: Sequence[CallState] | None = None,
    callpower_campaign_ids: Sequence[int] | None = None,
    mobiles: Sequence[str] | None = None,
) -> Page[Call]:
    """Stored calls, newest first."""
    query = sa.select(Call).where(
        *any_of(Call.state, states),
        *any_of(Call.callpower_campaign_id, callpower_campaign_ids),
    )
    if mobiles is None:
        return keyset_page(session, query, [Call.id], page, lambda c: (c.id,))
    # Two halves, each with its index: calls the importer has seen are indexed by mobile (a
    # partial index, see `Call`); those still waiting are few and found by state.
    by_mobile = any_of(Call.mobile, mobiles)
    halves = []
    if states is None or any(state != CallState.RECEIVED for state in states):
        halves.append(query.where(*by_mobile, sa.text(f"calls.{SEEN_BY_IMPORTER}")))
    if states is None or CallState.RECEIVED in states:
        halves.append(query.where(*by_mobile, rarely(session, Call.state == CallState.RECEIVED.value)))
    return keyset_page(session, halves, [Call.id], page, lambda c: (c.id,))


# -- retries and mapping ---------------------------------------------------------------------


class CallNotRetryable(Conflict):
    def __init__(self, call_id: int, state: str) -> None:
        allowed = ", ".join(state.value for state in RETRYABLE_STATES)
        super().__init__(f"Call {call_id} is {state}; only {allowed} calls can be retried.")


class CallPowerCampaignTaken(Conflict):
    def __init__(self, callpower_campaign_id: int, action_id: int | None) -> None:
        holder = f"action {action_id}" if action_id is not None else "another action"
        super().__init__(f"CallPower campaign {callpower_campaign_id} is already mapped to {holder}.")
        self.callpower_campaign_id = callpower_campaign_id
        self.action_id = action_id


def _send_back(session: Session, state: CallState, call_filter: Any) -> int:
    """Hand the calls in `state` that `call_filter` picks back to the importer now, with a fresh
    count of attempts; returns how many (the state is in the condition, so a call that changed
    meanwhile is left as it is, and counted as it is)."""
    now = utcnow()
    sent = session.execute(
        sa.update(Call)
        .where(Call.state == state, call_filter)
        .values(state=CallState.RECEIVED, attempts=0, next_attempt_at=now, updated_at=now)
        .returning(Call.callpower_campaign_id, Call.received_at)
        .execution_options(synchronize_session=False)
    ).all()
    statistics.moved(session, [(campaign, received_at, state, CallState.RECEIVED) for campaign, received_at in sent])
    if sent:
        announce_calls(session)
    return len(sent)


# -- retries ----------------------------------------------------------------------------------


def retry_call(session: Session, call_id: int) -> Call:
    call = get_call(session, call_id)
    if call.state not in RETRYABLE_STATES:
        raise CallNotRetryable(call_id, call.state)
    _send_back(session, CallState(call.state), Call.id == call_id)
    session.refresh(call)
    return call


def retry_calls(session: Session, state: CallState) -> int:
    """Send every call in `state` back to the importer; returns how many."""
    if state not in RETRYABLE_STATES:
        allowed = ", ".join(state.value for state in RETRYABLE_STATES)
        raise Conflict(f"Only {allowed} calls can be retried, not {state}.")
    return _send_back(session, state, sa.true())


# -- mapping a CallPower campaign to an action --------------------------------------------------


def release_unmapped_calls(session: Session, callpower_campaign_id: int) -> int:
    """Hand a CallPower campaign's parked (`unmapped`) calls to the importer; returns how many."""
    lock_campaign(session, callpower_campaign_id)
    return _send_back(
        session, CallState.UNMAPPED, sa.and_(Call.callpower_campaign_id == callpower_campaign_id, sa.text(PARKED))
    )


def map_campaign(session: Session, action_id: int, callpower_campaign_id: int | None) -> tuple[Action, int]:
    """Make `action_id` the action of a CallPower campaign (or of none).

    The campaign's waiting (`unmapped`) calls go to the importer in the same transaction.
    Returns the action and how many calls were released.
    """
    action = activity.get_action(session, action_id)
    if callpower_campaign_id is not None:
        holder = activity.action_for_callpower_campaign(session, callpower_campaign_id)
        if holder is not None and holder.id != action.id:
            raise CallPowerCampaignTaken(callpower_campaign_id, holder.id)
    action.callpower_campaign_id = callpower_campaign_id
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # Another session mapped the same campaign between our check and our write.
        raise CallPowerCampaignTaken(callpower_campaign_id or 0, None) from None
    released = 0 if callpower_campaign_id is None else release_unmapped_calls(session, callpower_campaign_id)
    return action, released


def add_action(session: Session, *, callpower_campaign_id: int | None = None, **fields: Any) -> tuple[Action, int]:
    """A new action on a campaign (`activity.create_action`'s fields), mapped to a CallPower
    campaign if one is given; returns it and how many waiting calls that released."""
    action = activity.create_action(session, **fields)
    if callpower_campaign_id is None:
        return action, 0
    return map_campaign(session, action.id, callpower_campaign_id)


def change_action(session: Session, action_id: int, changes: Mapping[str, Any]) -> tuple[Action, int]:
    """Change an action's fields; a `callpower_campaign_id` among them (None: unmap) maps it."""
    fields = dict(changes)
    remap = "callpower_campaign_id" in fields
    callpower_campaign_id = fields.pop("callpower_campaign_id", None)
    action = activity.update_action(session, action_id, fields)
    if not remap:
        return action, 0
    return map_campaign(session, action.id, callpower_campaign_id)


def add_campaign_for(
    session: Session, callpower_campaign_id: int, *, campaign_title: str, action_name: str
) -> tuple[Action, int]:
    """A new campaign and its action, fed by a CallPower campaign, in one step (the console's)."""
    campaign = activity.create_campaign(session, internal_title=campaign_title)
    return add_action(session, campaign_id=campaign.id, name=action_name, callpower_campaign_id=callpower_campaign_id)
