"""What operators count: stored calls by state, per CallPower campaign and per day, the
importer's backlog, and why calls were rejected.

The counts are kept, not recomputed: `call_counts_by_campaign` (CallPower campaign, state) and
`call_counts_by_day` (day received, UTC; state) change in the transaction that changes a call's
state, so reading them costs the same at 10,000 calls and at 10,000,000. Whatever changes a
call's state says so with `count` or `moved` (intake per batch, the importer per batch, retries,
repairs, erasure); the changes add up in the session and are written once, in key order, just
before it commits (`write_counts`, called by `Database`): one upsert per touched row per
transaction, and concurrent PostgreSQL writers lock the counters in the same order and only for
the moment of their commit. A savepoint that is rolled back drops what was counted inside it
(`db.savepoint`). `rebuild` recounts them from the calls (`rollcall stats rebuild`).
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.callpower.models import WAITING_STATES, Call, CallState, CampaignCount, DayCount
from rollcall.db import BEFORE_COMMIT, PENDING_COUNTS, table_of
from rollcall.dialect import lock_for_recount, upsert, utc_day
from rollcall.times import utcnow

REASONS_SAMPLE = 1000  # the newest rejected calls whose reasons are counted

_by_campaign = table_of(CampaignCount)
_by_day = table_of(DayCount)

# A change of the counts: a call of (CallPower campaign, received at) enters (+1) or leaves (-1) a state.
Change = tuple[int | None, dt.datetime, str, int]


def day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


# -- keeping them -------------------------------------------------------------------------------


@dataclass
class PendingCounts:
    """What this transaction changed, not yet written: (campaign, state) and (day, state) deltas."""

    by_campaign: collections.Counter[tuple[int, str]]
    by_day: collections.Counter[tuple[dt.date, str]]

    def copy(self) -> PendingCounts:
        return PendingCounts(self.by_campaign.copy(), self.by_day.copy())


def count(session: Session, changes: Iterable[Change]) -> None:
    """Add calls entering or leaving states to this transaction's counts (written at commit)."""
    pending = session.info.get(PENDING_COUNTS)
    if pending is None:
        pending = session.info[PENDING_COUNTS] = PendingCounts(collections.Counter(), collections.Counter())
        session.info.setdefault(BEFORE_COMMIT, {})["counts"] = write_counts
    for campaign, received_at, state, delta in changes:
        if campaign is not None:
            pending.by_campaign[(campaign, str(state))] += delta
        pending.by_day[(day_of(received_at), str(state))] += delta


def moved(session: Session, calls: Iterable[tuple[int | None, dt.datetime, str, str]]) -> None:
    """Calls (campaign, received at, from state, to state) that changed state."""
    count(
        session,
        (
            change
            for campaign, received_at, before, after in calls
            if before != after
            for change in ((campaign, received_at, before, -1), (campaign, received_at, after, 1))
        ),
    )


def _add(table: sa.Table, excluded: Any) -> dict[str, Any]:
    return {"calls": table.c.calls + excluded.calls}


def write_counts(session: Session) -> None:
    """Write this transaction's count changes (`Database` calls it before every commit)."""
    pending: PendingCounts | None = session.info.pop(PENDING_COUNTS, None)
    if pending is None:
        return
    connection = session.connection()
    campaigns = [
        {"callpower_campaign_id": campaign, "state": state, "calls": delta}
        for (campaign, state), delta in sorted(pending.by_campaign.items())
        if delta
    ]
    if campaigns:
        connection.execute(upsert(session, _by_campaign, ("callpower_campaign_id", "state"), _add), campaigns)
    days = [
        {"day": day, "state": state, "calls": delta} for (day, state), delta in sorted(pending.by_day.items()) if delta
    ]
    if days:
        connection.execute(upsert(session, _by_day, ("day", "state"), _add), days)


# -- reading them -------------------------------------------------------------------------------


def _states(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    counts = {state.value: 0 for state in CallState}
    for state, calls in rows:
        counts[state] = counts.get(state, 0) + calls
    return counts


def count_calls_by_state(session: Session) -> dict[str, int]:
    """Stored calls in each state."""
    return _states(session.execute(sa.select(DayCount.state, sa.func.sum(DayCount.calls)).group_by(DayCount.state)))


def calls_by_campaign(session: Session, callpower_campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each campaign's calls in every state."""
    found: dict[int, list[tuple[str, int]]] = {id_: [] for id_ in callpower_campaign_ids}
    if callpower_campaign_ids:
        rows = session.execute(
            sa.select(CampaignCount.callpower_campaign_id, CampaignCount.state, CampaignCount.calls).where(
                CampaignCount.callpower_campaign_id.in_(callpower_campaign_ids)
            )
        )
        for campaign_id, state, calls in rows:
            found[campaign_id].append((state, calls))
    return {id_: _states(rows) for id_, rows in found.items()}


def backlog(session: Session) -> tuple[int, dt.datetime | None]:
    """How many calls wait for an importer (received, failed), and since when the oldest waits
    (the oldest of each state is the first entry of the (state, received_at) index)."""
    waiting = session.scalar(
        sa.select(sa.func.sum(DayCount.calls)).where(DayCount.state.in_([str(state) for state in WAITING_STATES]))
    )
    oldest = [
        session.scalar(sa.select(Call.received_at).where(Call.state == state).order_by(Call.received_at).limit(1))
        for state in WAITING_STATES
    ]
    return int(waiting or 0), min((moment for moment in oldest if moment is not None), default=None)


# -- recounting them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    by_campaign: dict[tuple[int, str], int]
    by_day: dict[tuple[dt.date, str], int]


def maintained(session: Session) -> Counts:
    """The counts as kept (rows at 0 left out)."""
    by_campaign = session.execute(
        sa.select(_by_campaign.c.callpower_campaign_id, _by_campaign.c.state, _by_campaign.c.calls)
    )
    by_day = session.execute(sa.select(_by_day.c.day, _by_day.c.state, _by_day.c.calls))
    return Counts({(c, s): n for c, s, n in by_campaign if n}, {(d, s): n for d, s, n in by_day if n})


def recount(session: Session) -> Counts:
    """The counts as the calls are now, counted over the whole table."""
    day = utc_day(session, Call.received_at)
    by_campaign = session.execute(
        sa.select(Call.callpower_campaign_id, Call.state, sa.func.count())
        .where(Call.callpower_campaign_id.is_not(None))
        .group_by(Call.callpower_campaign_id, Call.state)
    )
    by_day = session.execute(sa.select(day, Call.state, sa.func.count()).group_by(day, Call.state))
    return Counts(
        {(c, s): n for c, s, n in by_campaign if c is not None},
        {(d if isinstance(d, dt.date) else dt.date.fromisoformat(d), s): n for d, s, n in by_day},
    )


def _differing(kept: dict[Any, int], counted: dict[Any, int]) -> int:
    return sum(kept.get(key) != counted.get(key) for key in kept.keys() | counted.keys())


@dataclass(frozen=True)
class Rebuilt:
    counts: Counts
    corrected: int  # counters that were wrong (or missing, or left over)


def rebuild(session: Session) -> Rebuilt:
    """Replace the kept counts with a recount of the calls, in the caller's transaction. On
    PostgreSQL the calls are locked against writes meanwhile (SHARE), so nothing changes between
    the recount and its storing: the intake and importers wait for the few seconds it takes."""
    session.info.pop(PENDING_COUNTS, None)
    lock_for_recount(session, "calls")
    before, after = maintained(session), recount(session)
    wrong = _differing(before.by_campaign, after.by_campaign) + _differing(before.by_day, after.by_day)
    session.execute(sa.delete(_by_campaign))
    session.execute(sa.delete(_by_day))
    if after.by_campaign:
        session.execute(
            sa.insert(_by_campaign),
            [{"callpower_campaign_id": c, "state": s, "calls": n} for (c, s), n in sorted(after.by_campaign.items())],
        )
    if after.by_day:
        session.execute(
            sa.insert(_by_day), [{"day": d, "state": s, "calls": n} for (d, s), n in sorted(after.by_day.items())]
        )
    return Rebuilt(after, wrong)


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


def overview(session: Session, *, days: int = 14, now: dt.datetime | None = None) -> Overview:
    """Calls per state for each of the last `days` days (UTC), the backlog and the last arrival."""
    today = day_of(now or utcnow())
    first = today - dt.timedelta(days=days - 1)
    kept: dict[dt.date, list[tuple[str, int]]] = collections.defaultdict(list)
    for day, state, calls in session.execute(
        sa.select(DayCount.day, DayCount.state, DayCount.calls).where(DayCount.day >= first, DayCount.day <= today)
    ):
        kept[day].append((state, calls))
    result = [DayOfCalls(day, _states(kept[day])) for day in (first + dt.timedelta(days=n) for n in range(days))]
    waiting, oldest = backlog(session)
    last = session.scalar(sa.select(Call.received_at).order_by(Call.received_at.desc()).limit(1))
    return Overview(result, waiting, oldest, last)
