"""What operators count: stored calls by state, per CallPower campaign and per day, the
importer's backlog, and why calls were rejected.

The counts are kept, not recomputed: `call_counts_by_campaign` (CallPower campaign, state),
`call_counts_by_day` (day received, UTC; state) and `call_rejections_by_reason` (campaign, day,
problem) change in the transaction that changes a call's state, so reading them costs the same at
10,000 calls and at 10,000,000. Whatever changes a call's state says so with `count` or `moved`
(intake per batch, the importer per batch, retries, repairs, erasure), and whatever makes or ends
a rejection with `count_rejections`; the changes add up in the transaction (`PendingCounts`, a
part of it) and are written once, in key order, just before it commits: one upsert per touched
row per transaction, and concurrent PostgreSQL writers lock the counters in the same order and only for
the moment of their commit. A savepoint that is rolled back drops what was counted inside it
(`db.savepoint`). `rebuild` recounts them from the calls (`rollcall stats rebuild`).
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.calls.models import (
    REASON_LENGTH,
    WAITING_STATES,
    Call,
    CallState,
    CampaignCount,
    DayCount,
    RejectionCount,
)
from rollcall.db import part, table_of, transaction
from rollcall.dialect import driver_dates, lock_for_recount, upsert_rows, utc_day
from rollcall.times import utcnow

NO_CAMPAIGN = 0  # the campaign of rejected calls that named none, in `call_rejections_by_reason`

_by_campaign = table_of(CampaignCount)
_by_day = table_of(DayCount)
_by_reason = table_of(RejectionCount)

# A change of the counts: a call of (CallPower campaign, received at) enters (+1) or leaves (-1) a state.
Change = tuple[int | None, dt.datetime, str, int]
# A rejected call of (CallPower campaign, received at) with these errors is made (+1) or ends (-1).
Rejection = tuple[int | None, dt.datetime, dict[str, list[str]] | None, int]


def day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


# -- keeping them -------------------------------------------------------------------------------


@dataclass
class PendingCounts:
    """What this transaction changed, not yet written: (campaign, state), (day, state) and
    (campaign, day, reason) deltas. A part of the transaction (`db.part`): written just before it
    commits, forgotten with a savepoint that is rolled back."""

    by_campaign: collections.Counter[tuple[int, str]] = field(default_factory=collections.Counter)
    by_day: collections.Counter[tuple[dt.date, str]] = field(default_factory=collections.Counter)
    by_reason: collections.Counter[tuple[int, dt.date, str]] = field(default_factory=collections.Counter)

    def copy(self) -> PendingCounts:
        return PendingCounts(self.by_campaign.copy(), self.by_day.copy(), self.by_reason.copy())

    def before_commit(self, session: Session) -> None:
        """Write the changes: one upsert per touched row, in key order (the order concurrent
        writers lock them in)."""
        day = driver_dates(session)
        for name, (table, key) in _KEPT.items():
            rows = _rows(key, getattr(self, name))
            for row in rows:
                if "day" in row:
                    row["day"] = day(row["day"])
            upsert_rows(session, table, key, _add, rows)
        self.by_campaign.clear()
        self.by_day.clear()
        self.by_reason.clear()


def _pending(session: Session) -> PendingCounts:
    return part(session, PendingCounts)


def _reason_keys(
    campaign: int | None, received_at: dt.datetime, errors: dict[str, list[str]] | None
) -> list[tuple[int, dt.date, str]]:
    """The (campaign, day, problem) counters a rejected call is counted under: one per error
    message it has."""
    reasons = {message[:REASON_LENGTH] for messages in (errors or {}).values() for message in messages}
    day = day_of(received_at)
    return [(NO_CAMPAIGN if campaign is None else campaign, day, reason) for reason in reasons]


def count(session: Session, changes: Iterable[Change]) -> None:
    """Add calls entering or leaving states to this transaction's counts (written at commit)."""
    pending = _pending(session)
    for campaign, received_at, state, delta in changes:
        if campaign is not None:
            pending.by_campaign[(campaign, str(state))] += delta
        pending.by_day[(day_of(received_at), str(state))] += delta


def count_rejections(session: Session, rejections: Iterable[Rejection]) -> None:
    """Add rejected calls made (+1) or ended (-1: repaired, revalidated, erased, or their errors
    changed) to this transaction's counts of problems."""
    pending = _pending(session)
    for campaign, received_at, errors, delta in rejections:
        for key in _reason_keys(campaign, received_at, errors):
            pending.by_reason[key] += delta


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


# Each kept count: its table, and the columns of its key (`PendingCounts` and `Counts` fields alike).
_KEPT: dict[str, tuple[sa.Table, tuple[str, ...]]] = {
    "by_campaign": (_by_campaign, ("callpower_campaign_id", "state")),
    "by_day": (_by_day, ("day", "state")),
    "by_reason": (_by_reason, ("callpower_campaign_id", "day", "reason")),
}


def _rows(key: tuple[str, ...], counts: dict[Any, int]) -> list[dict[str, Any]]:
    """A kept count's rows, in key order (the order concurrent writers lock them in), zeros left out."""
    return [{**dict(zip(key, k, strict=True)), "calls": n} for k, n in sorted(counts.items()) if n]


# -- reading them -------------------------------------------------------------------------------


def _states(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    counts = {state.value: 0 for state in CallState}
    for state, calls in rows:
        counts[state] = counts.get(state, 0) + int(calls)  # (PostgreSQL sums bigints as numeric)
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
    (the oldest of each state is the first of the (state, id) index: ids grow with arrival)."""
    waiting = session.scalar(
        sa.select(sa.func.sum(DayCount.calls)).where(DayCount.state.in_([str(state) for state in WAITING_STATES]))
    )
    oldest = [
        session.scalar(sa.select(Call.received_at).where(Call.state == state).order_by(Call.id).limit(1))
        for state in WAITING_STATES
    ]
    return int(waiting or 0), min((moment for moment in oldest if moment is not None), default=None)


# -- recounting them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    by_campaign: dict[tuple[int, str], int]
    by_day: dict[tuple[dt.date, str], int]
    by_reason: dict[tuple[int, dt.date, str], int]


def maintained(session: Session) -> Counts:
    """The counts as kept (rows at 0 left out)."""
    found = {}
    for name, (table, key) in _KEPT.items():
        rows = session.execute(sa.select(*(table.c[column] for column in key), table.c.calls))
        found[name] = {tuple(row[:-1]): row[-1] for row in rows if row[-1]}
    return Counts(**found)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def recount(session: Session) -> Counts:
    """The counts as the calls are now, counted over the whole table."""
    day = utc_day(session, Call.received_at)
    by_campaign = session.execute(
        sa.select(Call.callpower_campaign_id, Call.state, sa.func.count())
        .where(Call.callpower_campaign_id.is_not(None))
        .group_by(Call.callpower_campaign_id, Call.state)
    )
    by_day = session.execute(sa.select(day, Call.state, sa.func.count()).group_by(day, Call.state))
    by_reason: collections.Counter[tuple[int, dt.date, str]] = collections.Counter()
    rejected = session.execute(
        sa.select(Call.callpower_campaign_id, Call.received_at, Call.errors).where(
            Call.state == CallState.REJECTED.value
        )
    )
    for campaign, received_at, errors in rejected:
        by_reason.update(_reason_keys(campaign, received_at, errors))
    return Counts(
        {(c, s): n for c, s, n in by_campaign if c is not None},
        {(_date(d), s): n for d, s, n in by_day},
        dict(by_reason),
    )


def differing(kept: dict[Any, int], counted: dict[Any, int]) -> int:
    return sum(kept.get(key) != counted.get(key) for key in kept.keys() | counted.keys())


@dataclass(frozen=True)
class Rebuilt:
    counts: Counts
    corrected: int  # counters that were wrong (or missing, or left over)


def rebuild(session: Session) -> Rebuilt:
    """Replace the kept counts with a recount of the calls, in the caller's transaction. On
    PostgreSQL the calls are locked against writes meanwhile (SHARE), so nothing changes between
    the recount and its storing: the intake and importers wait for the few seconds it takes."""
    transaction(session).parts.pop(PendingCounts, None)  # what it counted so far is recounted anyway
    lock_for_recount(session, "calls")
    before, after = maintained(session), recount(session)
    wrong = 0
    for name, (table, key) in _KEPT.items():
        counted: dict[Any, int] = getattr(after, name)
        wrong += differing(getattr(before, name), counted)
        session.execute(sa.delete(table))
        rows = _rows(key, counted)
        if rows:
            session.execute(sa.insert(table), rows)
    return Rebuilt(after, wrong)


def rejections_by_campaign(session: Session, callpower_campaign_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Why each campaign's calls are rejected: each problem with how many of its rejected calls
    have it, most common first."""
    found: dict[int, collections.Counter[str]] = {id_: collections.Counter() for id_ in callpower_campaign_ids}
    if callpower_campaign_ids:
        rows = session.execute(
            sa.select(RejectionCount.callpower_campaign_id, RejectionCount.reason, sa.func.sum(RejectionCount.calls))
            .where(RejectionCount.callpower_campaign_id.in_(callpower_campaign_ids))
            .group_by(RejectionCount.callpower_campaign_id, RejectionCount.reason)
        )
        for campaign, reason, calls in rows:
            if calls:
                found[campaign][reason] = int(calls)
    return {id_: dict(reasons.most_common()) for id_, reasons in found.items()}


def rejection_reasons(session: Session, *, since: dt.date) -> collections.Counter[str]:
    """Why the calls received since a day were rejected: each problem, with how many have it."""
    rows = session.execute(
        sa.select(RejectionCount.reason, sa.func.sum(RejectionCount.calls))
        .where(RejectionCount.day >= since)
        .group_by(RejectionCount.reason)
    )
    return collections.Counter({reason: int(calls) for reason, calls in rows if calls})


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
    last = session.scalar(sa.select(Call.received_at).order_by(Call.id.desc()).limit(1))  # (the newest)
    return Overview(result, waiting, oldest, last)
