"""Campaign results: for a scope (campaigns, actions or source campaigns, or everything) and a
period of local dates in a time zone, the figures of its `phone-call` posts by the call's own time,
grouped by day, hour, weekday and hour, target, state, district, action or campaign, with the
period's totals; and which targets' offices stopped answering.

Read from the figures kept as posts are made (`figures`): by quarter hour for the time groupings
and totals, by quarter hour, target and member for distinct callers and the target groupings.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import Action, Campaign
from rollcall.db import table_of
from rollcall.errors import InvalidInput
from rollcall.reports.models import FIGURES, ReportCall, ReportQuarter, ReportTarget
from rollcall.reports.periods import DAY, HOUR, Period, hour_text

MAX_ROWS = 10_000  # a grouping that would answer more is refused (422)
_quarters, _calls, _targets = table_of(ReportQuarter), table_of(ReportCall), table_of(ReportTarget)
_WEEK = [(weekday, hour) for weekday in range(7) for hour in range(24)]


class Grouping(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    WEEKDAY_HOUR = "weekday_hour"
    TARGET = "target"
    STATE = "state"
    DISTRICT = "district"
    ACTION = "action"
    CAMPAIGN = "campaign"


TIME_GROUPINGS = (Grouping.DAY, Grouping.HOUR, Grouping.WEEKDAY_HOUR)


@dataclass(frozen=True)
class Scope:
    """Which posts: of these campaigns (None: every one), and within them of these actions or
    source campaigns (None: any)."""

    campaign_ids: tuple[int, ...] | None = None
    action_ids: tuple[int, ...] | None = None
    source_campaign_ids: tuple[int, ...] | None = None


def campaigns_of(session: Session, scope: Scope) -> list[int]:
    """The campaigns a scope reaches (every query is by campaign first, as the kept rows are)."""
    found = set(session.scalars(sa.select(Campaign.id))) if scope.campaign_ids is None else set(scope.campaign_ids)
    if scope.action_ids is not None:
        found &= set(session.scalars(sa.select(Action.campaign_id).where(Action.id.in_(scope.action_ids))))
    if scope.source_campaign_ids is not None:
        found &= set(
            session.scalars(
                sa.select(_quarters.c.campaign_id)
                .where(_quarters.c.source_campaign_id.in_(scope.source_campaign_ids))
                .distinct()
            )
        )
    return sorted(found)


def _where(table: sa.Table, campaigns: Sequence[int], scope: Scope, start: int, end: int) -> list[Any]:
    conditions = [table.c.campaign_id.in_(campaigns), table.c.quarter >= start, table.c.quarter < end]
    if scope.action_ids is not None:
        conditions.append(table.c.action_id.in_(scope.action_ids))
    if scope.source_campaign_ids is not None:
        conditions.append(table.c.source_campaign_id.in_(scope.source_campaign_ids))
    return conditions


def _keys(grouping: Grouping, period: Period, table: sa.Table) -> list[Any]:
    """The SQL of a grouping's key over a kept table."""
    local = period.local_seconds(table.c.quarter)
    if grouping == Grouping.DAY:
        return [local // DAY]
    if grouping == Grouping.HOUR:
        return [local // HOUR, period.offset(table.c.quarter)]
    if grouping == Grouping.WEEKDAY_HOUR:  # 1970-01-01 was a Thursday: Monday is 0
        return [(local // DAY + 3) % 7, (local % DAY) // HOUR]
    if grouping == Grouping.ACTION:
        return [table.c.action_id]
    if grouping == Grouping.CAMPAIGN:
        return [table.c.campaign_id]
    if grouping == Grouping.TARGET:
        return [_targets.c.name, _targets.c.title, _targets.c.district]
    if grouping == Grouping.STATE:
        return [_targets.c.state]
    return [_targets.c.district]


def _figures(
    session: Session, grouping: Grouping | None, period: Period, campaigns: Sequence[int], scope: Scope
) -> dict[tuple[Any, ...], list[int]]:
    """(key, ...) -> the figures (`FIGURES` then callers) of each row of a grouping (None: the totals)."""
    by_target = grouping in (Grouping.TARGET, Grouping.STATE, Grouping.DISTRICT)
    sums = _calls if by_target else _quarters
    keys = _keys(grouping, period, sums) if grouping else []
    query = sa.select(*keys, *(sa.func.sum(sums.c[name]) for name in FIGURES)).where(
        *_where(sums, campaigns, scope, period.start, period.end)
    )
    if by_target:
        query = query.join(_targets, _targets.c.id == sums.c.target_id)
    found = {
        tuple(row[: len(keys)]): [int(value or 0) for value in row[len(keys) :]]
        for row in session.execute(query.group_by(*keys))
    }
    caller_keys = _keys(grouping, period, _calls) if grouping else []
    callers = sa.select(*caller_keys, sa.func.count(sa.distinct(_calls.c.user_id))).where(
        *_where(_calls, campaigns, scope, period.start, period.end), _calls.c.calls > 0
    )
    if by_target:
        callers = callers.join(_targets, _targets.c.id == _calls.c.target_id)
    for row in session.execute(callers.group_by(*caller_keys)):
        found.setdefault(tuple(row[:-1]), [0] * len(FIGURES)).append(int(row[-1]))
    for figures in found.values():
        if len(figures) == len(FIGURES):
            figures.append(0)
    return {key: figures for key, figures in found.items() if grouping is None or figures[0] or figures[-1]}


_NAMES = (*FIGURES[:-1], "callers", FIGURES[-1])  # callers shown before new members


def _shown(figures: list[int]) -> dict[str, int]:
    values = dict(zip((*FIGURES, "callers"), figures, strict=True))
    return {name: values[name] for name in _NAMES}


def _blank(value: str | None) -> str | None:
    return value or None


def report(
    session: Session, scope: Scope, period: Period, grouping: Grouping
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows of a grouping (key fields, then figures) in their order, and the period's totals."""
    campaigns = campaigns_of(session, scope)
    if (
        grouping == Grouping.DAY
        and len(period.days()) > MAX_ROWS
        or grouping == Grouping.HOUR
        and (period.end - period.start) > MAX_ROWS * 4
    ):
        raise InvalidInput(
            {"group_by": [f"{grouping} over this period is more than {MAX_ROWS:,} rows: shorten the period."]}
        )
    found = _figures(session, grouping, period, campaigns, scope)
    totals = _figures(session, None, period, campaigns, scope).get((), [0] * (len(FIGURES) + 1))
    empty = [0] * (len(FIGURES) + 1)
    rows: list[dict[str, Any]]
    if grouping == Grouping.DAY:
        epoch = dt.date(1970, 1, 1)
        rows = [{"day": day.isoformat(), **_shown(found.get(((day - epoch).days,), empty))} for day in period.days()]
    elif grouping == Grouping.HOUR:
        hours = period.hours()
        if len(hours) > MAX_ROWS:
            raise InvalidInput(
                {"group_by": [f"hour over this period is more than {MAX_ROWS:,} rows: shorten the period."]}
            )
        rows = [{"hour": hour_text(hour, offset), **_shown(found.get((hour, offset), empty))} for hour, offset in hours]
    elif grouping == Grouping.WEEKDAY_HOUR:
        rows = [
            {"weekday": weekday, "hour": hour, **_shown(found.get((weekday, hour), empty))} for weekday, hour in _WEEK
        ]
    else:
        rows = [_keyed(grouping, key, _shown(figures)) for key, figures in found.items()]
        rows.sort(key=lambda row: (-row["calls"], [str(v) for k, v in row.items() if k not in _NAMES]))
        if len(rows) > MAX_ROWS:
            raise InvalidInput({"group_by": [f"{grouping} gives more than {MAX_ROWS:,} rows: narrow the scope."]})
    return rows, _shown(totals)


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
    """The quarter of the scope's first call (for a period of "all")."""
    campaigns = campaigns_of(session, scope)
    if not campaigns:
        return None
    query = sa.select(sa.func.min(_quarters.c.quarter)).where(
        _quarters.c.campaign_id.in_(campaigns), _quarters.c.calls > 0
    )
    if scope.action_ids is not None:
        query = query.where(_quarters.c.action_id.in_(scope.action_ids))
    if scope.source_campaign_ids is not None:
        query = query.where(_quarters.c.source_campaign_id.in_(scope.source_campaign_ids))
    found = session.scalar(query)
    return int(found) if found is not None else None


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
    from rollcall.reports.figures import quarter_of

    campaigns = campaigns_of(session, scope)
    end = quarter_of(now) + 1
    start = end - 96
    unanswered = _calls.c.busy + _calls.c.no_answer + _calls.c.failed
    query = (
        sa.select(
            _targets.c.name, _targets.c.title, _targets.c.district, sa.func.sum(_calls.c.calls), sa.func.sum(unanswered)
        )
        .join(_targets, _targets.c.id == _calls.c.target_id)
        .where(*_where(_calls, campaigns, scope, start, end))
        .group_by(_targets.c.name, _targets.c.title, _targets.c.district)
        .having(sa.func.sum(_calls.c.calls) >= at_least)
    )
    found = [
        Unreachable(_blank(name), _blank(title), _blank(district), int(calls), int(missed))
        for name, title, district, calls, missed in session.execute(query)
        if calls and missed / calls > share
    ]
    return sorted(found, key=lambda target: (-target.share, -target.calls))
