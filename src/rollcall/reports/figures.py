"""Keeping the results' figures exact as posts are made and removed.

Every post counts in the quarter hour (UTC) of its call (`call_timestamp`): in `report_quarters`
by (campaign, action, source campaign, quarter), and in `report_calls` by target and member too.
The importer counts the posts it makes (`count_posts`), an erasure uncounts a member's
(`uncount_member`), in the transaction that makes or removes them: the changes add up in the
transaction (`ReportChanges`, a part of it) and are written once, in key order, just before it
commits, as the call counts are (`calls.statistics`). `rebuild` recounts them from the posts.

A quarter hour serves every time zone: zones are whole hours, or :30 or :45 off UTC, so any local
day or hour begins on a quarter. Distinct callers are counted from `report_calls`, which keeps the
member of each row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.db import part, table_of, transaction
from rollcall.dialect import insert_ignoring_conflicts, lock_for_recount, upsert
from rollcall.reports.models import FIGURES, OUTCOMES, QUARTER, ReportCall, ReportQuarter, ReportTarget

_quarters, _calls, _targets = table_of(ReportQuarter), table_of(ReportCall), table_of(ReportTarget)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def quarter_of(moment: dt.datetime) -> int:
    """The quarter hour (UTC) a moment is in, as a number (seconds since 1970 / 900)."""
    return int((moment - _EPOCH).total_seconds()) // QUARTER


def outcome_of(status: str) -> str:
    """A call's outcome among `OUTCOMES`, from the status its source gave (`no-answer`, `Busy`)."""
    name = status.strip().lower().replace("-", "_").replace(" ", "_")
    return name if name in OUTCOMES else "other"


def state_of(district: str | None) -> str:
    """A district's state: `FL-7` and `FL` are `FL`; none is ""."""
    return (district or "").split("-", 1)[0].strip().upper()


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # "" where the call named none
    title: str
    district: str

    @classmethod
    def of(cls, name: str | None, title: str | None, district: str | None) -> Target:
        return cls(name or "", title or "", district or "")


@dataclass(frozen=True, slots=True)
class Counted:
    """What one post counts for in the results."""

    campaign_id: int
    action_id: int
    source_campaign_id: int
    user_id: str
    call_timestamp: dt.datetime
    outcome: str  # one of OUTCOMES
    seconds: int
    target: Target
    new_member: bool  # the post of the call that made its member known


def _vector(counted: Counted, sign: int) -> list[int]:
    return [
        sign,
        *(sign if counted.outcome == outcome else 0 for outcome in OUTCOMES),
        sign * counted.seconds,
        sign if counted.new_member else 0,
    ]


# campaign, quarter, action, source campaign; and by call: target and member too
Key = tuple[Any, ...]


@dataclass
class ReportChanges:
    """What this transaction changed of the figures, not yet written (a part of the transaction,
    `db.part`: written just before it commits, forgotten with a savepoint rolled back)."""

    by_quarter: dict[Key, list[int]] = field(default_factory=dict)
    by_call: dict[Key, list[int]] = field(default_factory=dict)

    def copy(self) -> ReportChanges:
        return ReportChanges(
            {key: list(values) for key, values in self.by_quarter.items()},
            {key: list(values) for key, values in self.by_call.items()},
        )

    def add(self, quarter_key: Key, call_key: Key, vector: list[int]) -> None:
        for changes, key in ((self.by_quarter, quarter_key), (self.by_call, call_key)):
            kept = changes.setdefault(key, [0] * len(FIGURES))
            for index, delta in enumerate(vector):
                kept[index] += delta

    def before_commit(self, session: Session) -> None:
        """One upsert per kept table, rows in key order (the order concurrent writers lock them in)."""
        connection = session.connection()
        for table, changes, key in (
            (_quarters, self.by_quarter, ("campaign_id", "quarter", "action_id", "source_campaign_id")),
            (
                _calls,
                self.by_call,
                ("campaign_id", "quarter", "action_id", "source_campaign_id", "target_id", "user_id"),
            ),
        ):
            rows = [
                {**dict(zip(key, k, strict=True)), **dict(zip(FIGURES, values, strict=True))}
                for k, values in sorted(changes.items())
                if any(values)
            ]
            if rows:
                connection.execute(upsert(session, table, key, _added), rows)
        self.by_quarter.clear()
        self.by_call.clear()


def _added(table: sa.Table, excluded: Any) -> dict[str, Any]:
    return {name: table.c[name] + excluded[name] for name in FIGURES}


def target_ids(session: Session, targets: Iterable[Target]) -> dict[Target, int]:
    """The ids of these targets, made now for those never seen (race-free: the unique target decides)."""
    wanted = set(targets)
    if not wanted:
        return {}
    rows = [{"name": t.name, "title": t.title, "district": t.district, "state": state_of(t.district)} for t in wanted]
    session.connection().execute(insert_ignoring_conflicts(session, _targets), sorted(rows, key=lambda r: str(r)))
    found = session.execute(
        sa.select(_targets.c.id, _targets.c.name, _targets.c.title, _targets.c.district).where(
            _targets.c.name.in_({t.name for t in wanted}), _targets.c.title.in_({t.title for t in wanted})
        )
    )
    ids = {Target(name, title, district): target_id for target_id, name, title, district in found}
    return {target: ids[target] for target in wanted}


def count_posts(session: Session, posts: Sequence[Counted], *, sign: int = 1) -> None:
    """Add posts made (or, with `sign` -1, removed) to this transaction's changes of the figures."""
    if not posts:
        return
    ids = target_ids(session, {post.target for post in posts})
    changes = part(session, ReportChanges)
    for post in posts:
        quarter = quarter_of(post.call_timestamp)
        scope = (post.campaign_id, quarter, post.action_id, post.source_campaign_id)
        changes.add(scope, (*scope, ids[post.target], post.user_id), _vector(post, sign))


def uncount_member(session: Session, user_id: str, campaign_quarters: Iterable[tuple[int, int]]) -> None:
    """Take a member's posts out of the figures (an erasure), in the caller's transaction: every
    row of theirs in `report_calls` (found in the (campaign, quarter) pairs their posts are in)
    leaves `report_quarters` and is deleted."""
    changes = part(session, ReportChanges)
    key = ("campaign_id", "quarter", "action_id", "source_campaign_id")
    pairs = sorted(set(campaign_quarters))
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        rows = session.execute(
            sa.select(*(_calls.c[name] for name in key), *(_calls.c[name] for name in FIGURES)).where(
                _calls.c.user_id == user_id,
                sa.tuple_(_calls.c.campaign_id, _calls.c.quarter).in_(chunk),
            )
        ).all()
        for row in rows:
            scope = tuple(row[: len(key)])
            kept = changes.by_quarter.setdefault(scope, [0] * len(FIGURES))
            for index, value in enumerate(row[len(key) :]):
                kept[index] -= value
        session.execute(
            sa.delete(_calls).where(
                _calls.c.user_id == user_id, sa.tuple_(_calls.c.campaign_id, _calls.c.quarter).in_(chunk)
            )
        )


# -- recounting them ----------------------------------------------------------------------------

# What a post's details mean for the results, as its source wrote them: (status, seconds,
# (target's name, title, district)). CallPower's: `callpower.source.CallPower.reported`.
ReadDetails = Callable[[dict[str, Any]], tuple[str, int, tuple[str | None, str | None, str | None]]]


@dataclass(frozen=True)
class Kept:
    quarters: dict[tuple[Any, ...], tuple[int, ...]]
    calls: dict[tuple[Any, ...], tuple[int, ...]]


def kept(session: Session) -> Kept:
    """The figures as kept (rows at 0 left out), keyed by target rather than its id."""
    names = {row.id: Target(row.name, row.title, row.district) for row in session.execute(sa.select(_targets))}
    quarters = {
        tuple(row[:4]): tuple(row[4:])
        for row in session.execute(
            sa.select(
                _quarters.c.campaign_id,
                _quarters.c.quarter,
                _quarters.c.action_id,
                _quarters.c.source_campaign_id,
                *(_quarters.c[name] for name in FIGURES),
            )  # fmt: skip
        )
        if any(row[4:])
    }
    calls = {
        (*row[:4], names[row[4]], row[5]): tuple(row[6:])
        for row in session.execute(
            sa.select(
                _calls.c.campaign_id,
                _calls.c.quarter,
                _calls.c.action_id,
                _calls.c.source_campaign_id,
                _calls.c.target_id,
                _calls.c.user_id,
                *(_calls.c[name] for name in FIGURES),
            )  # fmt: skip
        )
        if any(row[6:])
    }
    return Kept(quarters, calls)


# A post as the recount reads it: campaign, action, source campaign (its call's), member, call
# time, details, whether it is its member's first post.
PostRow = tuple[int, int, int | None, str, dt.datetime | None, dict[str, Any] | None, bool]


def counted_of(row: PostRow, read: ReadDetails) -> Counted | None:
    """What a post counts for (None: nothing, without a call time or source campaign)."""
    campaign_id, action_id, source, user_id, moment, details, first = row
    if moment is None or source is None:
        return None
    status, seconds, named = read(details or {})
    return Counted(
        campaign_id, action_id, source, user_id, moment, outcome_of(status), seconds, Target.of(*named), first
    )


def recount(posts: Iterable[PostRow], read: ReadDetails) -> Kept:
    """The figures as `posts` (all of them) make them, keyed as `kept` keys them."""
    quarters: dict[Key, list[int]] = {}
    calls: dict[Key, list[int]] = {}
    for row in posts:
        counted = counted_of(row, read)
        if counted is None:
            continue
        scope = (counted.campaign_id, quarter_of(counted.call_timestamp), counted.action_id, counted.source_campaign_id)
        for table, key in ((quarters, scope), (calls, (*scope, counted.target, counted.user_id))):
            found = table.setdefault(key, [0] * len(FIGURES))
            for index, delta in enumerate(_vector(counted, 1)):
                found[index] += delta
    return Kept({k: tuple(v) for k, v in quarters.items()}, {k: tuple(v) for k, v in calls.items()})


def rebuild(session: Session, batches: Iterable[Sequence[PostRow]], read: ReadDetails) -> int:
    """Replace the kept figures with a recount of the posts (`batches` of all of them), in the
    caller's transaction (on PostgreSQL the posts are locked against writes meanwhile); how many
    rows were wrong. Counted a batch at a time, as the importer counts: memory stays small at
    any size."""
    transaction(session).parts.pop(ReportChanges, None)
    lock_for_recount(session, "posts")
    connection = session.connection()
    for table in (_quarters, _calls):
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE before_{table.name} AS SELECT * FROM {table.name}")
        session.execute(sa.delete(table))
    for batch in batches:
        count_posts(session, [counted for row in batch if (counted := counted_of(row, read)) is not None])
        part(session, ReportChanges).before_commit(session)
    wrong = 0
    for table in (_quarters, _calls):
        before = sa.table(f"before_{table.name}", *(sa.column(column.name) for column in table.c))
        now, then = (sa.select(*(t.c[c.name] for c in table.c)).where(t.c.calls != 0) for t in (table, before))
        keys = [column.name for column in table.primary_key]
        differing = sa.union(
            sa.select(*(sa.column(k) for k in keys)).select_from(sa.except_(now, then).subquery()),
            sa.select(*(sa.column(k) for k in keys)).select_from(sa.except_(then, now).subquery()),
        ).subquery()
        wrong += session.scalar(sa.select(sa.func.count()).select_from(differing)) or 0
        connection.exec_driver_sql(f"DROP TABLE before_{table.name}")
    return wrong
