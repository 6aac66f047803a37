"""What operators count: stored calls by state, overall, per CallPower campaign and per day, the
importer's backlog, and why calls were rejected.

Most calls end `imported`, so the other states are counted on their indexes (they hold few rows)
and `imported` is what they leave of a total kept elsewhere (`callpower_campaigns.calls`, a day's
count on `received_at`). `Statistics` keeps the one cache: a finished day's total never changes.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.callpower.models import WAITING_STATES, Call, CallPowerCampaign, CallState
from rollcall.db import Database
from rollcall.times import utcnow

# States other than `imported` are few; `imported` is what remains of a total.
_UNFINISHED = [state for state in CallState if state != CallState.IMPORTED]
REASONS_SAMPLE = 1000  # the newest rejected calls whose reasons are counted


def count_calls_by_state(session: Session) -> dict[str, int]:
    """Stored calls in each state, without counting the whole table: `imported` is what the
    other states leave of the total, which `callpower_campaigns` keeps (plus the few rejected
    calls that named no campaign)."""
    counts = {state.value: 0 for state in CallState}
    rows = session.execute(
        sa.select(Call.state, sa.func.count()).where(Call.state.in_(_UNFINISHED)).group_by(Call.state)
    )
    counts.update({state: count for state, count in rows})
    named = session.scalar(sa.select(sa.func.sum(CallPowerCampaign.calls))) or 0
    unnamed = session.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.callpower_campaign_id.is_(None)))
    counts[CallState.IMPORTED] = max(0, named + (unnamed or 0) - sum(counts.values()))
    return counts


def unfinished_calls_by_campaign(session: Session, callpower_campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each campaign's calls in every state but `imported`."""
    counts: dict[int, dict[str, int]] = {id_: dict.fromkeys(_UNFINISHED, 0) for id_ in callpower_campaign_ids}
    if callpower_campaign_ids:
        rows = session.execute(
            sa.select(Call.callpower_campaign_id, Call.state, sa.func.count())
            .where(Call.state.in_(_UNFINISHED), Call.callpower_campaign_id.in_(callpower_campaign_ids))
            .group_by(Call.callpower_campaign_id, Call.state)
        )
        for campaign_id, state, count in rows:
            if campaign_id is not None:
                counts[campaign_id][state] = count
    return counts


def backlog(session: Session) -> tuple[int, dt.datetime | None]:
    """How many calls wait for an importer (received, failed), and since when the oldest waits."""
    waiting, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(Call.received_at)).where(Call.state.in_(WAITING_STATES))
    ).one()
    return waiting, oldest


def rejection_reasons(
    session: Session, *, callpower_campaign_id: int | None = None, since: dt.datetime | None = None
) -> collections.Counter[str]:
    """Why calls were rejected: each problem, with how many of the newest `REASONS_SAMPLE`
    rejected calls (of one CallPower campaign, or since a time) have it."""
    query = sa.select(Call.errors).where(Call.state == CallState.REJECTED)
    if callpower_campaign_id is not None:
        query = query.where(Call.callpower_campaign_id == callpower_campaign_id)
    if since is not None:
        query = query.where(Call.received_at >= since)
    reasons: collections.Counter[str] = collections.Counter()
    for errors in session.scalars(query.order_by(Call.id.desc()).limit(REASONS_SAMPLE)):
        reasons.update({message for messages in (errors or {}).values() for message in messages})
    return reasons


# -- the operators' overview ------------------------------------------------------------------


@dataclass(frozen=True)
class DayOfCalls:
    day: dt.date
    calls: dict[str, int]  # by state, for the calls received that day

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True)
class Overview:
    days: list[DayOfCalls]  # oldest first; the last one is today (UTC)
    backlog: int  # calls waiting for the importer: received, and failed ones waiting to be retried
    oldest_waiting_at: dt.datetime | None
    last_received_at: dt.datetime | None

    @property
    def today(self) -> dict[str, int]:
        return self.days[-1].calls

    @property
    def week(self) -> dict[str, int]:
        totals = dict.fromkeys(self.today, 0)
        for day in self.days[-7:]:
            for state, count in day.calls.items():
                totals[state] += count
        return totals


class Statistics:
    """The overview, with its cache of finished days' totals (one per process)."""

    def __init__(self) -> None:
        self._day_totals: dict[dt.date, int] = {}

    def warm(self, database: Database) -> None:
        """Count the finished days now (in the background at start), not on the first visit."""
        with contextlib.suppress(Exception), database.reading() as session:
            self.overview(session)

    def overview(self, session: Session, *, days: int = 14, now: dt.datetime | None = None) -> Overview:
        """Calls per state for each of the last `days` days (UTC), the backlog and the last arrival.

        The other states are counted on the (state, received_at) index, a day's total on the
        received_at index, and each finished day's total once.
        """
        now = now or utcnow()
        today = now.astimezone(dt.UTC).date()
        totals = self._day_totals
        result = []
        for offset in range(days - 1, -1, -1):
            day = today - dt.timedelta(days=offset)
            start = dt.datetime.combine(day, dt.time(), dt.UTC)
            within = (Call.received_at >= start, Call.received_at < start + dt.timedelta(days=1))
            if day not in totals or day >= today:
                totals[day] = session.scalar(sa.select(sa.func.count()).select_from(Call).where(*within)) or 0
            calls = {state.value: 0 for state in CallState}
            rows = session.execute(
                sa.select(Call.state, sa.func.count()).where(Call.state.in_(_UNFINISHED), *within).group_by(Call.state)
            )
            calls.update({state: count for state, count in rows})
            calls[CallState.IMPORTED] = totals[day] - sum(calls.values())
            result.append(DayOfCalls(day, calls))
        waiting, oldest = backlog(session)
        last = session.scalar(sa.select(sa.func.max(Call.received_at)))
        return Overview(result, waiting, oldest, last)
