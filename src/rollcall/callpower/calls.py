"""Reading the stored calls: one by id, and lists newest first by state, campaign or mobile."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.callpower.models import SEEN_BY_IMPORTER, Call, CallState
from rollcall.dialect import rarely
from rollcall.errors import NotFound
from rollcall.paging import Page, PageRequest, any_of, keyset_page


class UnknownCall(NotFound):
    def __init__(self, call_id: object) -> None:
        super().__init__("call", call_id)


def get_call(session: Session, call_id: int, *, for_update: bool = False) -> Call:
    call = session.get(Call, call_id, with_for_update=for_update)
    if call is None:
        raise UnknownCall(call_id)
    return call


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
