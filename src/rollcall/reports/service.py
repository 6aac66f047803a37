"""Campaign results: for a scope (campaigns, actions or source campaigns, or everything) and a
period of local dates in a time zone, the figures of its `phone-call` posts by the call's own time,
grouped by day, hour, weekday and hour, target, state, district, action or campaign, with the
period's totals; and which targets' offices stopped answering.

Read from the figures kept as posts are made (`figures`): by quarter hour for the time groupings
and totals, by quarter hour, target and member for distinct callers and the target groupings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import Action, Campaign
from rollcall.config import Settings
from rollcall.db import part, table_of
from rollcall.errors import InvalidInput
from rollcall.paging import any_of
from rollcall.reports.figures import quarter_of, state_of, zones_of
from rollcall.reports.groupings import Grouping
from rollcall.reports.models import (
    ANY_CAMPAIGN,
    FIGURES,
    QUARTERS_A_DAY,
    QUARTERS_AN_HOUR,
    SAME_DAY_AT_MOST,
    ReportCall,
    ReportDay,
    ReportGap,
    ReportHour,
    ReportLastCalls,
    ReportMember,
    ReportQuarter,
    ReportRepeat,
    ReportTarget,
    ReportTargetDay,
    ReportTargetHour,
    ReportWeekRepeat,
)
from rollcall.reports.periods import DAY, HOUR, Period, hour_text, today_in
from rollcall.times import UnknownTimeZone, utcnow, zone

MAX_ROWS = 10_000  # a grouping that would answer more is refused (422)
MAX_DAYS = 36_525  # a period of a century at most
DEFAULT_DAYS = 30  # the period when none is given: the last 30 days, today included
_quarters, _calls, _targets = table_of(ReportQuarter), table_of(ReportCall), table_of(ReportTarget)
_hours, _days, _target_days = table_of(ReportHour), table_of(ReportDay), table_of(ReportTargetDay)
_target_hours = table_of(ReportTargetHour)
_members, _last_calls, _gaps = table_of(ReportMember), table_of(ReportLastCalls), table_of(ReportGap)
_repeats, _week_repeats = table_of(ReportRepeat), table_of(ReportWeekRepeat)
Key = tuple[Any, ...]  # a row's key, by grouping
_WEEK = [(weekday, hour) for weekday in range(7) for hour in range(24)]
_BY_TARGET = (Grouping.TARGET, Grouping.STATE, Grouping.DISTRICT)  # the groupings read with the targets


@dataclass(frozen=True)
class Scope:
    """Which posts: of these campaigns (None: every one), and within them of these actions or
    source campaigns (None: any)."""

    campaign_ids: tuple[int, ...] | None = None
    action_ids: tuple[int, ...] | None = None
    source_campaign_ids: tuple[int, ...] | None = None


@dataclass
class _Reached:
    """The campaigns each scope reached in this transaction: a report asks for them once per
    grouping, and a read sees one snapshot (`Database.reading`). Kept in the transaction
    (`db.part`), forgotten when it ends; nothing to write."""

    scopes: dict[Scope, list[int]] = field(default_factory=dict)

    def before_commit(self, session: Session) -> None:
        pass

    def copy(self) -> _Reached:
        return _Reached(dict(self.scopes))


def campaigns_of(session: Session, scope: Scope) -> list[int]:
    """The campaigns a scope reaches (every query is by campaign first, as the kept rows are)."""
    reached = part(session, _Reached).scopes
    if scope not in reached:
        reached[scope] = _reached_by(session, scope)
    return list(reached[scope])


def _reached_by(session: Session, scope: Scope) -> list[int]:
    found = set(session.scalars(sa.select(Campaign.id).where(*any_of(Campaign.id, scope.campaign_ids))))
    if scope.action_ids is not None:
        found &= set(session.scalars(sa.select(Action.campaign_id).where(*any_of(Action.id, scope.action_ids))))
    if scope.source_campaign_ids is not None:
        found &= set(
            session.scalars(
                sa.select(_quarters.c.campaign_id)
                .where(*any_of(_quarters.c.source_campaign_id, scope.source_campaign_ids))
                .distinct()
            )
        )
    return sorted(found)


def _every_campaign(scope: Scope) -> bool:
    """The scope is every campaign, whole: what the sums and last calls kept under `ANY_CAMPAIGN`
    answer (by time, target and in total; not by action or campaign)."""
    return scope == Scope()


def _where(table: sa.Table, campaigns: Sequence[int], scope: Scope, start: int, end: int) -> list[Any]:
    """A kept table's rows of the scope from `start` to `end` (quarters, or the hours or days the
    table is kept by)."""
    moment = next(table.c[name] for name in ("quarter", "hour", "day") if name in table.c)
    return [*_of_scope(table, campaigns, scope), moment >= start, moment < end]


def _total(column: Any) -> Any:
    """SQL: the sum of an integer column, as an integer: PostgreSQL's sum of a bigint is a numeric,
    which arrives as a `Decimal` (the hour rows of a year, 8,761, took a third longer to read)."""
    return sa.cast(sa.func.sum(column), sa.BigInteger)


def _of_scope(table: sa.Table, campaigns: Sequence[int], scope: Scope) -> list[Any]:
    """A kept table's rows of the scope, at any time."""
    return [
        *any_of(table.c.campaign_id, campaigns),
        *any_of(table.c.action_id, scope.action_ids),
        *any_of(table.c.source_campaign_id, scope.source_campaign_ids),
    ]


def _keys(grouping: Grouping, period: Period, table: sa.Table) -> list[Any]:
    """The SQL of a grouping's key over a kept table."""
    if grouping in (Grouping.DAY, Grouping.HOUR, Grouping.WEEKDAY_HOUR):
        quarter = table.c.quarter if "quarter" in table.c else table.c.hour * QUARTERS_AN_HOUR
        return _time_keys(grouping, period, quarter)
    if grouping == Grouping.ACTION:
        return [table.c.action_id]
    if grouping == Grouping.CAMPAIGN:
        return [table.c.campaign_id]
    if grouping == Grouping.TARGET:
        return [_targets.c.name, _targets.c.title, _targets.c.district]
    if grouping == Grouping.STATE:
        return [_targets.c.state]
    return [_targets.c.district]


def _time_keys(grouping: Grouping, period: Period, quarter: Any) -> list[Any]:
    """The SQL of a time grouping's key of a quarter (SQL)."""
    local = period.local_seconds(quarter)
    if grouping == Grouping.DAY:
        return [local // DAY]
    if grouping == Grouping.HOUR:
        return [local // HOUR, period.offset(quarter)]
    # (1970-01-01 was a Thursday: Monday is 0)
    return [(local // DAY + 3) % 7, (local % DAY) // HOUR]


def _split(start: int, end: int, per: int, edges: sa.Table, wholes: sa.Table) -> list[tuple[sa.Table, int, int]]:
    """Quarters `start` to `end` as the kept tables read them: their whole UTC units of `per`
    quarters (hours or days) from `wholes`, by unit, and the quarters at the edges from `edges`
    (parts with nothing in them left out)."""
    first, last = -(-start // per), end // per
    if first >= last:
        return [(edges, start, end)]
    parts = [(edges, start, first * per), (wholes, first, last), (edges, last * per, end)]
    return [(table, begin, until) for table, begin, until in parts if begin < until]


def _sums(
    session: Session, grouping: Grouping | None, period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[tuple[Any, ...], list[int]]:
    """(key, ...) -> the sums (`FIGURES`) of each row of a grouping (None: the totals). By time
    from the hours where the zone's offsets over the period are whole hours, else from the
    quarter hours; the totals, by action and by campaign from the whole UTC days of the
    period and, at its edges (where a time zone's day begins inside a UTC day), from the quarter
    hours; by target, state or district likewise from the days by target and the posts' rows.
    For every campaign at once, the sums kept under `ANY_CAMPAIGN` (the posts' rows by campaign)."""
    if grouping in (Grouping.DAY, Grouping.HOUR, Grouping.WEEKDAY_HOUR):
        whole = period.start % QUARTERS_AN_HOUR == period.end % QUARTERS_AN_HOUR == 0
        if whole and all(offset % HOUR == 0 for _, offset in period.spans):
            parts = [(_hours, period.start // QUARTERS_AN_HOUR, period.end // QUARTERS_AN_HOUR)]
        else:
            parts = [(_quarters, period.start, period.end)]
    else:
        by_target = grouping in _BY_TARGET
        edges, days = (_calls, _target_days) if by_target else (_quarters, _days)
        parts = _split(period.start, period.end, QUARTERS_A_DAY, edges, days)
    every = _every_campaign(scope) and grouping not in (Grouping.ACTION, Grouping.CAMPAIGN)
    found: dict[tuple[Any, ...], list[int]] = {}
    for table, start, end in parts:
        if start >= end:
            continue
        keys = _keys(grouping, period, table) if grouping else []
        reached = [ANY_CAMPAIGN] if every and table is not _calls else campaigns
        query = sa.select(*keys, *(_total(table.c[name]) for name in FIGURES)).where(
            *_where(table, reached, scope, start, end)
        )
        if "target_id" in table.c and grouping:
            query = query.join(_targets, _targets.c.id == table.c.target_id)
        for row in session.execute(query.group_by(*keys)):
            kept = found.setdefault(tuple(row[: len(keys)]), [0] * len(FIGURES))
            for index, value in enumerate(row[len(keys) :]):
                kept[index] += int(value or 0)
    return found


def _callers_to_the_end(
    session: Session, grouping: Grouping | None, period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[tuple[Any, ...], int] | None:
    """Distinct callers of the totals or by campaign, counted from the members' last calls, where
    that is exact: the scope is whole campaigns and none of their calls is after the period
    (a period that runs to today), so a member called in the period if their last call is in
    it (for every campaign at once, their last call in any campaign): for one campaign or each
    campaign, or every campaign at once, a sum of the counts of last calls by quarter
    (`report_last_calls`), as cheap at ten million posts as at one. None where it is not exact."""
    whole_campaigns = scope.action_ids is None and scope.source_campaign_ids is None
    if grouping not in (None, Grouping.CAMPAIGN) or not whole_campaigns or not campaigns:
        return None
    later = sa.select(_quarters.c.quarter).where(
        _quarters.c.campaign_id.in_(campaigns), _quarters.c.quarter >= period.end, _quarters.c.calls > 0
    )
    if session.execute(later.limit(1)).first() is not None:
        return None
    if grouping is None and _every_campaign(scope):  # members' last calls in any campaign
        campaigns = [ANY_CAMPAIGN]
    counted: Any
    if grouping or len(campaigns) == 1:  # a member once per campaign: the counts by quarter add up
        table, counted = _last_calls, _total(_last_calls.c.members)
    else:  # several campaigns' members, some in more than one: counted member by member
        table, counted = _members, sa.func.count(sa.distinct(_members.c.user_id))
    keys = [table.c.campaign_id] if grouping else []
    query = sa.select(*keys, counted).where(table.c.campaign_id.in_(campaigns), table.c.last_quarter >= period.start)
    return {tuple(row[:-1]): int(row[-1] or 0) for row in session.execute(query.group_by(*keys))}


def _one_whole_campaign(campaigns: Sequence[int], scope: Scope) -> bool:
    """The scope is one campaign, whole (not some of its actions or source campaigns): what the
    rows kept per campaign and member (`report_gaps`, `report_repeats`) count exactly."""
    return scope.action_ids is None and scope.source_campaign_ids is None and len(campaigns) == 1


def _callers_by_gap(
    session: Session, grouping: Grouping | None, period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[tuple[Any, ...], int] | None:
    """Distinct callers by day or hour in one whole campaign, summed from the posts' gaps since
    their member's previous call there (`report_gaps`): a member is counted on the post whose
    previous call is in an earlier day (or hour), or none, or `SAME_DAY_AT_MOST` quarters or more
    before (the period begins a local day: a call before it is in an earlier day and hour). None
    where it is not exact: another grouping, part of a campaign, or several campaigns (a member
    who called two is one caller)."""
    if grouping not in (Grouping.DAY, Grouping.HOUR) or not _one_whole_campaign(campaigns, scope):
        return None
    return _firsts(session, grouping, grouping, period, campaigns[0])


def _firsts(session: Session, of: Grouping, by: Grouping, period: Period, campaign_id: int) -> dict[Key, int]:
    """How many posts of a campaign in the period are their member's first of a local day or hour
    (`of`), summed by a time grouping (`by`), from the posts' gaps (`report_gaps`)."""
    keys, own = _time_keys(by, period, _gaps.c.quarter), _time_keys(of, period, _gaps.c.quarter)
    before = _time_keys(of, period, _gaps.c.quarter - _gaps.c.since_previous)
    first = sa.or_(_gaps.c.since_previous >= SAME_DAY_AT_MOST, *(k != b for k, b in zip(own, before, strict=True)))
    query = sa.select(*keys, _total(_gaps.c.calls)).where(
        _gaps.c.campaign_id == campaign_id, _gaps.c.quarter >= period.start, _gaps.c.quarter < period.end, first
    )
    return {tuple(row[:-1]): int(row[-1] or 0) for row in session.execute(query.group_by(*keys))}


def _callers_by_week(
    session: Session, grouping: Grouping | None, period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[Key, int] | None:
    """Distinct callers by weekday-hour in one whole campaign, in the zone its weekday-hours are
    kept in (its own): its posts that are their member's first of a local hour (`_firsts`) less
    those whose member's previous call in the same weekday-hour is in the period too
    (`report_week_repeats`): of a member's local hours in a weekday-hour, all but the first.
    None where it is not exact: another grouping or zone, part of a campaign, or several
    campaigns (a member who called in two is one caller)."""
    if grouping != Grouping.WEEKDAY_HOUR or not _one_whole_campaign(campaigns, scope):
        return None
    if zones_of(session, campaigns, locked=False).get(campaigns[0]) != period.name:
        return None
    counted = _firsts(session, Grouping.HOUR, grouping, period, campaigns[0])
    query = (
        sa.select(_week_repeats.c.cell, sa.func.count())
        .where(
            _week_repeats.c.campaign_id == campaigns[0],
            _week_repeats.c.quarter >= period.start,
            _week_repeats.c.quarter < period.end,
            _week_repeats.c.previous_quarter >= period.start,
        )
        .group_by(_week_repeats.c.cell)
    )
    for cell, repeats in session.execute(query):
        key = divmod(cell, 24)  # (weekday, hour)
        counted[key] = counted.get(key, 0) - int(repeats)
    return counted


def _callers_by_repeats(
    session: Session,
    grouping: Grouping | None,
    found: dict[tuple[Any, ...], list[int]],
    period: Period,
    campaigns: Sequence[int],
    scope: Scope,
) -> dict[tuple[Any, ...], int] | None:
    """Distinct callers by target, state or district in one whole campaign: each row's calls
    (`found`, the sums) less its posts whose member's previous call to the same target (state,
    district) is in the period too (`report_repeats`): of a member's posts to it in the period,
    all but the first. None where it is not exact: another grouping, part of a campaign, or
    several campaigns (a member who called the same office in two is one caller)."""
    if grouping not in _BY_TARGET or not _one_whole_campaign(campaigns, scope):
        return None
    keys = _keys(grouping, period, _repeats)
    query = (
        sa.select(*keys, sa.func.count())
        .join(_targets, _targets.c.id == _repeats.c.target_id)
        .where(
            _repeats.c.campaign_id == campaigns[0],
            _repeats.c.quarter >= period.start,
            _repeats.c.quarter < period.end,
            _repeats.c[f"previous_{grouping.value}"] >= period.start,
        )
        .group_by(*keys)
    )
    counted = {key: figures[0] for key, figures in found.items()}
    for row in session.execute(query):
        counted[tuple(row[:-1])] -= int(row[-1])
    return counted


def _callers_of_lone_actions(
    session: Session, found: dict[tuple[Any, ...], list[int]], period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[tuple[Any, ...], int] | None:
    """Distinct callers by action where each action with calls in the period is the only one of
    its campaign with any (as most campaigns have one action): its callers are its campaign's,
    where the members' last calls tell them (`_callers_to_the_end`). None otherwise."""
    actions = [key[0] for key, figures in found.items() if figures[0]]
    campaign_of = dict(session.execute(sa.select(Action.id, Action.campaign_id).where(Action.id.in_(actions))).all())
    if len(set(campaign_of.values())) != len(actions):
        return None
    counted = _callers_to_the_end(session, Grouping.CAMPAIGN, period, campaigns, scope)
    if counted is None:
        return None
    return {(action,): counted.get((campaign_of[action],), 0) for action in actions}


def _figures(
    session: Session,
    grouping: Grouping | None,
    period: Period,
    campaigns: Sequence[int],
    scope: Scope,
    callers: bool = True,
) -> dict[tuple[Any, ...], list[Any]]:
    """(key, ...) -> the figures (`FIGURES` then callers) of each row of a grouping (None: the
    totals). Distinct callers cost a read of every member's row in the period, except where the
    members' last calls tell them (`_callers_to_the_end`): without `callers` they are None and
    the figures are sums only."""
    found: dict[tuple[Any, ...], list[Any]] = dict(_sums(session, grouping, period, campaigns, scope))
    if not callers:
        return {key: [*figures, None] for key, figures in found.items() if grouping is None or figures[0]}
    counted = _callers_to_the_end(session, grouping, period, campaigns, scope)
    if counted is None:
        counted = _callers_by_gap(session, grouping, period, campaigns, scope)
    if counted is None:
        counted = _callers_by_repeats(session, grouping, found, period, campaigns, scope)
    if counted is None:
        counted = _callers_by_week(session, grouping, period, campaigns, scope)
    if counted is None and grouping == Grouping.ACTION:
        counted = _callers_of_lone_actions(session, found, period, campaigns, scope)
    if counted is None:
        by_target = grouping in _BY_TARGET
        caller_keys = _keys(grouping, period, _calls) if grouping else []
        # (a member's row is never at 0: erased ones go)
        distinct = sa.select(*caller_keys, sa.func.count(sa.distinct(_calls.c.user_id))).where(
            *_where(_calls, campaigns, scope, period.start, period.end)
        )
        if by_target:
            distinct = distinct.join(_targets, _targets.c.id == _calls.c.target_id)
        counted = {tuple(row[:-1]): int(row[-1]) for row in session.execute(distinct.group_by(*caller_keys))}
    for key, members in counted.items():
        found.setdefault(key, [0] * len(FIGURES)).append(members)
    for figures in found.values():
        if len(figures) == len(FIGURES):
            figures.append(0)
    return {key: figures for key, figures in found.items() if grouping is None or figures[0] or figures[-1]}


FIGURE_NAMES = (*FIGURES[:-1], "callers", FIGURES[-1])  # a row's figures, in order (callers before new members)
# A row's key fields by grouping, in order.
KEY_FIELDS: dict[Grouping, tuple[str, ...]] = {
    Grouping.DAY: ("day",),
    Grouping.HOUR: ("hour",),
    Grouping.WEEKDAY_HOUR: ("weekday", "hour"),
    Grouping.TARGET: ("target_name", "target_title", "target_district"),
    Grouping.STATE: ("state",),
    Grouping.DISTRICT: ("district",),
    Grouping.ACTION: ("action_id",),
    Grouping.CAMPAIGN: ("campaign_id",),
}


def _shown(figures: list[Any]) -> dict[str, Any]:
    values = dict(zip((*FIGURES, "callers"), figures, strict=True))
    return {name: values[name] for name in FIGURE_NAMES}


def _blank(value: str | None) -> str | None:
    return value or None


def _too_many(grouping: Grouping, why: str) -> InvalidInput:
    return InvalidInput({"group_by": [f"{grouping} {why} more than {MAX_ROWS:,} rows: shorten the period."]})


def grouped(
    session: Session, scope: Scope, period: Period, grouping: Grouping, *, callers: bool = True
) -> list[dict[str, Any]]:
    """The rows of a grouping (key fields, then figures) in their order: every day or hour of the
    period (zeros included) and the week's 168 hours in time order, the others by calls (most
    first), then by key (blanks last). `InvalidInput` (group_by) beyond `MAX_ROWS`. Without
    `callers`, their `callers` are None (and the rows cost a sum, not a count of members)."""
    if grouping == Grouping.DAY and len(period.days()) > MAX_ROWS:
        raise _too_many(grouping, "over this period is")
    if grouping == Grouping.HOUR and (period.end - period.start) > MAX_ROWS * 4:
        raise _too_many(grouping, "over this period is")
    found = _figures(session, grouping, period, campaigns_of(session, scope), scope, callers)
    empty = [0] * len(FIGURES) + [0 if callers else None]
    if grouping == Grouping.DAY:
        epoch = dt.date(1970, 1, 1)
        return [{"day": day.isoformat(), **_shown(found.get(((day - epoch).days,), empty))} for day in period.days()]
    if grouping == Grouping.HOUR:
        hours = period.hours()
        if len(hours) > MAX_ROWS:
            raise _too_many(grouping, "over this period is")
        return [{"hour": hour_text(hour, offset), **_shown(found.get((hour, offset), empty))} for hour, offset in hours]
    if grouping == Grouping.WEEKDAY_HOUR:
        return [{"weekday": day, "hour": hour, **_shown(found.get((day, hour), empty))} for day, hour in _WEEK]
    rows = _ordered(grouping, [_keyed(grouping, key, _shown(figures)) for key, figures in found.items()])
    if len(rows) > MAX_ROWS:
        raise _too_many(grouping, "gives")
    return rows


def _ordered(grouping: Grouping, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most calls first, then by key (blanks last)."""
    keys = KEY_FIELDS[grouping]
    return sorted(rows, key=lambda row: (-row["calls"], [(row[k] is None, row[k] or "") for k in keys]))


def places(target_rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows by state and by district, summed from the rows by target (without callers: a
    member who called two targets of a state is one caller there, which sums cannot tell)."""
    states: dict[str | None, list[int]] = {}
    districts: dict[str | None, list[int]] = {}
    for row in target_rows:
        district = row["target_district"]
        for found, key in ((states, state_of(district) or None), (districts, district)):
            kept = found.setdefault(key, [0] * len(FIGURES))
            for index, name in enumerate(FIGURES):
                kept[index] += row[name]
    return (
        _ordered(Grouping.STATE, [_keyed(Grouping.STATE, (k,), _shown([*v, None])) for k, v in states.items()]),
        _ordered(
            Grouping.DISTRICT, [_keyed(Grouping.DISTRICT, (k,), _shown([*v, None])) for k, v in districts.items()]
        ),
    )


def totals(session: Session, scope: Scope, period: Period) -> dict[str, int]:
    """The figures of the whole period."""
    found = _figures(session, None, period, campaigns_of(session, scope), scope)
    return _shown(found.get((), [0] * (len(FIGURES) + 1)))


def _keyed(grouping: Grouping, key: tuple[Any, ...], figures: dict[str, int]) -> dict[str, Any]:
    if grouping == Grouping.TARGET:
        name, title, district = key
        return {
            "target_name": _blank(name),
            "target_title": _blank(title),
            "target_district": _blank(district),
            **figures,
        }
    if grouping == Grouping.STATE:
        return {"state": _blank(key[0]), **figures}
    if grouping == Grouping.DISTRICT:
        return {"district": _blank(key[0]), **figures}
    if grouping == Grouping.ACTION:
        return {"action_id": key[0], **figures}
    return {"campaign_id": key[0], **figures}


# -- when the figures begin -----------------------------------------------------------------------


def first_quarter(session: Session, scope: Scope) -> int | None:
    """The quarter of the scope's first call (for a period of "all"): its first UTC day with a
    call (`report_days`, a 96th of the rows), then its first quarter hour with one that day. For
    every campaign, from the sums kept under `ANY_CAMPAIGN` (one row a day, not one a campaign)."""
    campaigns = campaigns_of(session, scope)
    if not campaigns:
        return None
    if _every_campaign(scope):
        campaigns = [ANY_CAMPAIGN]
    day = session.scalar(
        sa.select(sa.func.min(_days.c.day)).where(*_of_scope(_days, campaigns, scope), _days.c.calls > 0)
    )
    if day is None:
        return None
    start = int(day) * QUARTERS_A_DAY
    where = _where(_quarters, campaigns, scope, start, start + QUARTERS_A_DAY)
    return int(session.scalar(sa.select(sa.func.min(_quarters.c.quarter)).where(*where, _quarters.c.calls > 0)))


# -- offices that stopped answering ---------------------------------------------------------------


@dataclass(frozen=True)
class Unreachable:
    """A target most of whose recent calls were not answered (busy, no answer, failed)."""

    name: str | None
    title: str | None
    district: str | None
    calls: int
    unanswered: int

    @property
    def share(self) -> float:
        return self.unanswered / self.calls

    def describe(self) -> str:
        who = " ".join(part for part in (self.title, self.name) if part) or "A target"
        where = f" ({self.district})" if self.district else ""
        return f"{who}{where}: {round(self.share * 100)}% of {self.calls} calls in the last 24 h not answered"


def unreachable(session: Session, scope: Scope, *, now: dt.datetime, share: float, at_least: int) -> list[Unreachable]:
    """Targets whose calls in the 24 hours before `now` were at least `at_least` and more than
    `share` of them busy, unanswered or failed; the worst first."""
    campaigns = campaigns_of(session, scope)
    end = quarter_of(now) + 1
    start = end - QUARTERS_A_DAY
    # The window's whole UTC hours from the sums by hour and target, the quarters at its edges
    # from the posts' rows: as many rows read on the biggest day as on a quiet one.
    counted: dict[tuple[str, str, str], list[int]] = {}
    for table, begin, until in _split(start, end, QUARTERS_AN_HOUR, _calls, _target_hours):
        reached = [ANY_CAMPAIGN] if _every_campaign(scope) and table is not _calls else campaigns
        unanswered = table.c.busy + table.c.no_answer + table.c.failed
        keys = (_targets.c.name, _targets.c.title, _targets.c.district)
        query = (
            sa.select(*keys, _total(table.c.calls), _total(unanswered))
            .join(_targets, _targets.c.id == table.c.target_id)
            .where(*_where(table, reached, scope, begin, until))
            .group_by(*keys)
        )
        for name, title, district, calls, missed in session.execute(query):
            kept = counted.setdefault((name, title, district), [0, 0])
            kept[0] += int(calls or 0)
            kept[1] += int(missed or 0)
    found = [
        Unreachable(_blank(name), _blank(title), _blank(district), calls, missed)
        for (name, title, district), (calls, missed) in counted.items()
        if calls and calls >= at_least and missed / calls > share
    ]
    return sorted(found, key=lambda target: (-target.share, -target.calls))


# -- the use case: a report as every interface asks for it ---------------------------------------


@dataclass(frozen=True)
class Asked:
    """A report as asked: the scope, the period (local dates; None: the default, or with
    `everything` from the first call on), the time zone's name (None: the campaign's or the
    default) and the grouping."""

    scope: Scope
    first: dt.date | None = None
    last: dt.date | None = None
    tz: str | None = None
    grouping: Grouping = Grouping.DAY
    everything: bool = False


@dataclass(frozen=True)
class Answer:
    grouping: Grouping
    rows: list[dict[str, Any]]
    totals: dict[str, int]
    period: Period
    unreachable: list[Unreachable]

    def columns(self) -> list[str]:
        """The rows' fields in order: the grouping's key fields, then the figures."""
        return [
            *KEY_FIELDS[self.grouping],
            *FIGURE_NAMES,
            *(["unreachable"] if self.grouping == Grouping.TARGET else []),
        ]

    def table(self) -> list[list[Any]]:
        """The rows as a table (`columns` first): what CSVs and the CLI print."""
        columns = self.columns()
        return [columns, *([row.get(name) for name in columns] for row in self.rows)]

    def document(self) -> dict[str, Any]:
        """The API's answer (and the CLI's `--json`)."""
        return {
            "data": self.rows,
            "meta": {
                "tz": self.period.name,
                "from": self.period.first.isoformat(),
                "to": self.period.last.isoformat(),
                "group_by": self.grouping.value,
                "totals": self.totals,
            },
        }


def zone_of(session: Session, scope: Scope, tz: str | None, default: str) -> str:
    """The report's time zone: the one asked for, else the campaign's when the scope is exactly
    one campaign that has one, else the default. `InvalidInput` (tz) for an unknown name."""
    if tz is None and scope.campaign_ids is not None and len(scope.campaign_ids) == 1:
        tz = session.scalar(sa.select(Campaign.timezone).where(*any_of(Campaign.id, scope.campaign_ids)))
    name = tz or default
    try:
        zone(name)
    except UnknownTimeZone as error:
        raise InvalidInput({"tz": [str(error)]}) from None
    return name


def period_of(session: Session, asked: Asked, tz: str, now: dt.datetime) -> Period:
    """The period asked for, in `tz`: from–to (either alone: 30 days from or to it), the last 30
    days by default, or from the scope's first call with `everything`. `InvalidInput` (from, to)
    for an inverted period or one of more than a century."""
    zone_info = zone(tz)
    today = today_in(zone_info, now)
    first, last = asked.first, asked.last
    if asked.everything and first is None:
        found = first_quarter(session, asked.scope)
        first = Period.date_of(found, zone_info) if found is not None else (last or today)
        last = max(last or today, first)
    span = dt.timedelta(days=DEFAULT_DAYS - 1)
    if first is None and last is None:
        first, last = today - span, today
    elif first is None:
        assert last is not None
        first = last - span
    elif last is None:
        last = first + span
    if first > last:
        raise InvalidInput({"to": [f"The period ends ({last}) before it begins ({first})."]})
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput({"from": ["The period is longer than a century: shorten it."]})
    try:
        return Period.of(first, last, zone_info)
    except OverflowError:
        raise InvalidInput({"from": ["The period is beyond the calendar."]}) from None


def answer(session: Session, asked: Asked, *, default_tz: str, now: dt.datetime, share: float, at_least: int) -> Answer:
    """The report asked for, with the targets whose offices stopped answering (flagged on the
    target rows as `unreachable`)."""
    tz = zone_of(session, asked.scope, asked.tz, default_tz)
    period = period_of(session, asked, tz, now)
    rows = grouped(session, asked.scope, period, asked.grouping)
    flagged = unreachable(session, asked.scope, now=now, share=share, at_least=at_least)
    if asked.grouping == Grouping.TARGET:
        flag(rows, flagged)
    return Answer(asked.grouping, rows, totals(session, asked.scope, period), period, flagged)


def answer_now(session: Session, asked: Asked, settings: Settings) -> Answer:
    """`answer` as the API, the console and the CLI ask it: as of now, in the settings' default
    time zone where the scope names none, offices flagged by the settings' thresholds."""
    return answer(
        session,
        asked,
        default_tz=settings.default_timezone,
        now=utcnow(),
        share=settings.unreachable_share,
        at_least=settings.unreachable_min_calls,
    )


def flag(rows: list[dict[str, Any]], flagged: Sequence[Unreachable]) -> None:
    """Mark the target rows of the targets whose offices stopped answering (`unreachable`)."""
    names = {(target.name, target.title, target.district) for target in flagged}
    for row in rows:
        row["unreachable"] = (row["target_name"], row["target_title"], row["target_district"]) in names
