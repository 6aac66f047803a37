"""Keeping the results' figures exact as posts are made and removed.

Every post counts in the quarter hour (UTC) of its call (`call_timestamp`): in `report_quarters`
by (campaign, action, source campaign, quarter), likewise by UTC hour (`report_hours`) and UTC
day (`report_days`), in `report_target_days` by (campaign, UTC day, action, source campaign,
target), each also under `ANY_CAMPAIGN` (every campaign's sums at once), as a row of its own
in `report_calls`, with its target and member, and as its member's last call in the campaign
and in any campaign (`report_members`, under the campaign and under `ANY_CAMPAIGN`) when none
is later, and so in how many members' last call is in its quarter (`report_last_calls`). The
importer counts the posts it makes (`count_posts`), an erasure uncounts a member's
(`uncount_member`), in the transaction that makes or removes them: the changes add up in the
transaction (`ReportChanges`, a part of it) and are written once, in key order, just before it
commits, as the call counts are (`calls.statistics`). `rebuild` recounts them from the posts.

A quarter hour serves every time zone: zones are whole hours, or :30 or :45 off UTC, so any local
day or hour begins on a quarter (a local day's edges fall inside UTC days: the targets of a
period are read from its whole UTC days and from `report_calls` at its edges). Distinct callers
are counted from `report_calls`, which keeps the member of each post, or, for a period that runs
to a campaign's last call (or every campaign's), summed from `report_last_calls`; for one
campaign by day or hour from `report_gaps`, and by target, state or district as its calls less
the posts in `report_repeats` whose member's previous call to the same office is in the period;
by weekday-hour in the campaign's own zone, its members' first calls of each local hour less the
posts in `report_week_repeats` whose member's previous call in that weekday-hour is in the period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import Post
from rollcall.db import part, table_of, transaction
from rollcall.dialect import (
    execute,
    for_share,
    insert_rows,
    lock_for_recount,
    numbered_marks,
    placeholder,
)
from rollcall.reports.models import (
    ANY_CAMPAIGN,
    FIGURES,
    OUTCOMES,
    QUARTER,
    QUARTERS_A_DAY,
    QUARTERS_AN_HOUR,
    REPEAT_KINDS,
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
from rollcall.reports.periods import hour_of

_quarters, _calls, _targets = table_of(ReportQuarter), table_of(ReportCall), table_of(ReportTarget)
_hours, _days, _target_days = table_of(ReportHour), table_of(ReportDay), table_of(ReportTargetDay)
_target_hours = table_of(ReportTargetHour)
_members, _last_calls, _gaps = table_of(ReportMember), table_of(ReportLastCalls), table_of(ReportGap)
_repeats, _week_repeats = table_of(ReportRepeat), table_of(ReportWeekRepeat)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_A_QUARTER = dt.timedelta(seconds=QUARTER)


def quarter_of(moment: dt.datetime) -> int:
    """The quarter hour (UTC) a moment (aware) is in, as a number (seconds since 1970 / 900)."""
    return (moment - _EPOCH) // _A_QUARTER


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

    post_id: int
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


QUARTER_KEY = ("campaign_id", "quarter", "action_id", "source_campaign_id")
HOUR_KEY = ("campaign_id", "hour", "action_id", "source_campaign_id")
DAY_KEY = ("campaign_id", "day", "action_id", "source_campaign_id")
TARGET_DAY_KEY = (*DAY_KEY, "target_id")
TARGET_HOUR_KEY = (*HOUR_KEY, "target_id")
MEMBER_COLUMNS = ("campaign_id", "user_id", "last_quarter")
LAST_CALLS_COLUMNS = ("campaign_id", "last_quarter", "members")
GAP_COLUMNS = ("campaign_id", "quarter", "since_previous", "calls")
CALL_COLUMNS = ("campaign_id", "quarter", "post_id", "action_id", "source_campaign_id", "target_id", "user_id")
REPEAT_COLUMNS = ("campaign_id", "quarter", "post_id", "target_id", *(f"previous_{kind}" for kind in REPEAT_KINDS))
WEEK_REPEAT_COLUMNS = ("campaign_id", "quarter", "post_id", "cell", "previous_quarter")
Key = tuple[Any, ...]


@dataclass
class ReportChanges:
    """What this transaction changed of the figures, not yet written (a part of the transaction,
    `db.part`: written just before it commits, forgotten with a savepoint rolled back): the sums
    to add (`SUMS`), the rows of the posts made, and the last call of each
    member made to call (a member erased is taken out at once, `uncount_member`)."""

    by_quarter: dict[Key, list[int]] = field(default_factory=dict)
    by_hour: dict[Key, list[int]] = field(default_factory=dict)
    by_day: dict[Key, list[int]] = field(default_factory=dict)
    by_target_day: dict[Key, list[int]] = field(default_factory=dict)
    by_target_hour: dict[Key, list[int]] = field(default_factory=dict)
    made: list[tuple[Any, ...]] = field(default_factory=list)  # CALL_COLUMNS, then FIGURES
    # (campaign or ANY_CAMPAIGN, member) -> quarter
    last_calls: dict[tuple[int, str], int] = field(default_factory=dict)
    # (campaign or ANY_CAMPAIGN, quarter) -> members whose last call moved there (or away: < 0)
    moved: dict[tuple[int, int], int] = field(default_factory=dict)
    # (campaign, quarter, quarters since the member's previous call) -> posts added (or taken: < 0)
    gaps: dict[tuple[int, int, int], int] = field(default_factory=dict)
    # (campaign, member) -> the posts made (quarter, post, target), whose gaps and repeats are
    # counted when their members' last calls are written (which return each member's last call
    # before them)
    posts: dict[tuple[int, str], list[tuple[int, int, int]]] = field(default_factory=dict)
    repeats: list[tuple[int, ...]] = field(default_factory=list)  # REPEAT_COLUMNS of the rows to insert
    week_repeats: list[tuple[int, ...]] = field(default_factory=list)  # WEEK_REPEAT_COLUMNS, likewise

    def copy(self) -> ReportChanges:
        quarters, hours, days, target_days, target_hours = (
            {key: list(values) for key, values in sums.items()} for sums in self.sums()
        )
        return ReportChanges(
            quarters,
            hours,
            days,
            target_days,
            target_hours,
            list(self.made),
            dict(self.last_calls),
            dict(self.moved),
            dict(self.gaps),
            {member: list(posts) for member, posts in self.posts.items()},
            list(self.repeats),
            list(self.week_repeats),
        )

    def gap(self, campaign_id: int, posts: Iterable[tuple[Any, ...]], sign: int, previous: int | None = None) -> None:
        """A member's posts (quarter, post, ...) in a campaign added (sign 1) or taken (-1), in order
        after their previous call there (in quarter `previous`; None: none): each by its gap."""
        for quarter, since in gaps_of(posts, previous):
            key = (campaign_id, quarter, since)
            self.gaps[key] = self.gaps.get(key, 0) + sign

    def sums(self) -> tuple[dict[Key, list[int]], ...]:
        """The sums to add, in `SUMS`' order."""
        return self.by_quarter, self.by_hour, self.by_day, self.by_target_day, self.by_target_hour

    def before_commit(self, session: Session) -> None:
        """Every table in key order (the order concurrent writers lock rows in): the sums by one
        upsert each, the posts' rows by one insert (straight to the driver: a row per post), the
        members' last calls by an upsert that keeps the later quarter (in any order of commits)."""
        for (table, key), changes in zip(SUMS, self.sums(), strict=True):
            add_every_campaign(changes)
            rows = [(*key, *values) for key, values in sorted(changes.items()) if any(values)]
            if rows:
                insert_rows(session, table, (*key, *FIGURES), rows, conflict=_adding(table.name, key))
            changes.clear()
        if self.made:
            insert_rows(session, _calls, (*CALL_COLUMNS, *FIGURES), sorted(self.made))
            self.made.clear()
        if self.last_calls:
            rows = [(*key, quarter, None) for key, quarter in sorted(self.last_calls.items())]
            # Each member made or moved later comes back with the quarter it left (None: new).
            before: dict[tuple[int, str], int | None] = {}
            for campaign_id, user_id, last, previous in insert_rows(
                session, _members, (*MEMBER_COLUMNS, "previous_quarter"), rows, returning=_MOVED, conflict=_LATER
            ):
                self.move(campaign_id, last, 1)
                if previous is not None:
                    self.move(campaign_id, previous, -1)
                before[(campaign_id, user_id)] = previous
            self.last_calls.clear()
            self.count_gaps(session, before)
        if self.repeats:
            insert_rows(session, _repeats, REPEAT_COLUMNS, sorted(self.repeats))
            self.repeats.clear()
        if self.week_repeats:
            insert_rows(session, _week_repeats, WEEK_REPEAT_COLUMNS, sorted(self.week_repeats))
            self.week_repeats.clear()
        if self.moved:
            rows = [(*key, members) for key, members in sorted(self.moved.items()) if members]
            if rows:
                insert_rows(session, _last_calls, LAST_CALLS_COLUMNS, rows, conflict=_MEMBERS_ADDED)
            self.moved.clear()
        if self.gaps:
            rows = [(*key, posts) for key, posts in sorted(self.gaps.items()) if posts]
            if rows:
                insert_rows(session, _gaps, GAP_COLUMNS, rows, conflict=_GAPS_ADDED)
            self.gaps.clear()

    def count_gaps(self, session: Session, before: dict[tuple[int, str], int | None]) -> None:
        """The gaps and repeats (`report_repeats`, `report_week_repeats`) of the posts made, each
        member's after their last call before them (`before`, as the upsert of their last call
        returned it; None: none; a member it did not move has their last call as late or later).
        A post made in its member's last quarter comes after the posts there: a member's posts in
        a campaign are made one transaction at a time (their signup's row locked), in the order of
        their ids, so every post of theirs made before has a lower id than any made now.

        A member who called there before repeats what they called before: what a post made repeats
        is the latest earlier call to its target, state or district and in its weekday-hour, so
        only the latest quarter of each target they called and the quarters they called in are
        read (`_earlier`, grouped by the database: a member's thousandth call costs what their
        second does). A member whose posts made are not all at or after their last call (a
        history sent out of order) has their gaps and repeats in the campaign counted again from
        all their posts (a later post's previous call may be one made now). The weekday-hours are
        the campaigns' zones' (read under a share lock: a change of zone, which counts them again,
        waits for this transaction, or this one for it)."""
        returning = [member for member in self.posts if before.get(member, 0) is not None]
        first_made = min((post_id for posts in self.posts.values() for _, post_id, _ in posts), default=0)
        earlier = _earlier(session, returning, first_made)
        for member in returning:  # (one not moved: their last call is their latest post there)
            if member not in before:
                seen = earlier.get(member, _NOTHING_EARLIER)
                before[member] = max(seen.quarters, default=max(self.posts[member])[0])
        # (a first call is never out of order)
        unordered = {member for member, made in self.posts.items() if (before[member] or 0) > min(made)[0]}
        histories = _histories(session, unordered)
        places = _places(
            session,
            {
                *(post[2] for posts in (*self.posts.values(), *histories.values()) for post in posts),
                *(target for seen in earlier.values() for target in seen.targets),
            },
        )
        zones = zones_of(session, {campaign_id for campaign_id, _ in self.posts})
        for (campaign_id, user_id), made in sorted(self.posts.items()):
            made.sort()
            previous = before[(campaign_id, user_id)]
            if (campaign_id, user_id) not in unordered:
                self.gap(campaign_id, made, 1, previous)
                seen = earlier.get((campaign_id, user_id), _NOTHING_EARLIER)
                self.repeats.extend(repeats_of(campaign_id, made, places.__getitem__, seen.targets))
                self.week_repeats.extend(week_repeats_of(campaign_id, made, zones[campaign_id], seen.quarters))
                continue
            theirs = histories[(campaign_id, user_id)]
            earlier_posts = sorted(set(theirs) - set(made))
            self.gap(campaign_id, earlier_posts, -1)
            self.gap(campaign_id, theirs, 1)
            for table in (_repeats, _week_repeats):
                for where in _repeats_where(table, campaign_id, earlier_posts):
                    session.execute(sa.delete(table).where(*where))
            self.repeats.extend(repeats_of(campaign_id, theirs, places.__getitem__))
            self.week_repeats.extend(week_repeats_of(campaign_id, theirs, zones[campaign_id]))
        self.posts.clear()

    def move(self, campaign_id: int, quarter: int, members: int) -> None:
        """Members' last calls in a campaign that came to (members > 0) or left a quarter."""
        key = (campaign_id, quarter)
        self.moved[key] = self.moved.get(key, 0) + members


SUMS = (  # the kept sums, and their keys
    (_quarters, QUARTER_KEY),
    (_hours, HOUR_KEY),
    (_days, DAY_KEY),
    (_target_days, TARGET_DAY_KEY),
    (_target_hours, TARGET_HOUR_KEY),
)


def add_every_campaign(sums: dict[Key, list[int]]) -> None:
    """Add to sums by campaign, action and source campaign (`SUMS`' keys) the same sums for every
    campaign at once: under `ANY_CAMPAIGN`, action and source campaign 0, what the all-campaigns
    results read (a 100th of the rows where there are 100 campaigns). Done on a transaction's
    changes as they are written (a few keys a batch), not per post."""
    for key, values in [(key, values) for key, values in sums.items() if key[0] != ANY_CAMPAIGN]:
        kept = sums.setdefault((ANY_CAMPAIGN, key[1], 0, 0, *key[4:]), [0] * len(FIGURES))
        for index, value in enumerate(values):
            kept[index] += value


def _adding(table: str, key: tuple[str, ...], names: tuple[str, ...] = FIGURES) -> str:
    """The conflict clause that adds a row's sums (`names`) to the kept row of its key."""
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET " + ", ".join(
        f"{name} = {table}.{name} + excluded.{name}" for name in names
    )


_LATER = (  # the conflict clause that keeps a member's later last call, and the one it replaces
    "ON CONFLICT (campaign_id, user_id) DO UPDATE SET last_quarter = excluded.last_quarter,"
    " previous_quarter = report_members.last_quarter WHERE excluded.last_quarter > report_members.last_quarter"
)
_MOVED = ("campaign_id", "user_id", "last_quarter", "previous_quarter")  # of the rows inserted or moved later
_MEMBERS_ADDED = _adding("report_last_calls", LAST_CALLS_COLUMNS[:2], LAST_CALLS_COLUMNS[2:])
_GAPS_ADDED = _adding("report_gaps", GAP_COLUMNS[:3], GAP_COLUMNS[3:])


def since_previous(quarter: int, previous: int | None) -> int:
    """Quarters from a member's previous call in a campaign (None: none) to this one, as
    `report_gaps` keeps them: at most `SAME_DAY_AT_MOST` (longer is never the same local day)."""
    return SAME_DAY_AT_MOST if previous is None else min(quarter - previous, SAME_DAY_AT_MOST)


def gaps_of(posts: Iterable[tuple[Any, ...]], previous: int | None = None) -> Iterator[tuple[int, int]]:
    """A member's posts (quarter, id, ...) in a campaign, in order after their previous call there
    (in quarter `previous`; None: none): each one's quarter and gap."""
    for quarter, *_ in sorted(posts):
        yield quarter, since_previous(quarter, previous)
        previous = quarter


def repeats_of(
    campaign_id: int,
    posts: Iterable[tuple[int, int, Any]],
    place: Callable[[Any], tuple[str, str]],
    earlier: dict[int, int] | None = None,
) -> Iterator[tuple[Any, ...]]:
    """A member's posts (quarter, id, target) in a campaign, all of them or those after
    `earlier` (target -> the latest quarter the member called it in before them): the rows of
    `report_repeats` (`REPEAT_COLUMNS`) of those whose member called the same state before (the
    same target or district is the same state), with their previous calls to the same target,
    state and district (`place`: a target's state and district)."""
    latest: dict[tuple[int, Any], int] = {}  # (kind, target, state or district) -> quarter
    for target, quarter in (earlier or {}).items():
        for key in enumerate((target, *place(target))):
            latest[key] = max(quarter, latest.get(key, quarter))
    for quarter, post_id, target in sorted(posts, key=lambda post: post[:2]):
        keys = tuple(enumerate((target, *place(target))))
        previous = tuple(latest.get(key) for key in keys)
        if previous[1] is not None:
            yield (campaign_id, quarter, post_id, target, *previous)
        for key in keys:
            latest[key] = quarter


History = dict[tuple[int, str], list[tuple[int, int, int]]]  # (campaign, member) -> (quarter, post, target)


def _histories(session: Session, members: Iterable[tuple[int, str]]) -> History:
    """(campaign, member) -> their posts there (quarter, post, target), read by `ix_report_calls_member`."""
    found: History = {}
    for campaign_id, theirs in _by_campaign(members).items():
        query = "SELECT user_id, quarter, post_id, target_id FROM report_calls WHERE campaign_id = {0} AND user_id"
        for user_id, quarter, post_id, target_id in _rows_in(session, query, theirs, (campaign_id,)):
            found.setdefault((campaign_id, user_id), []).append((quarter, post_id, target_id))
    return found


def _by_campaign(members: Iterable[tuple[int, str]]) -> dict[int, list[str]]:
    """(campaign, member) pairs as campaign -> its members, each once, in order."""
    users: dict[int, list[str]] = {}
    for campaign_id, user_id in sorted(set(members)):
        users.setdefault(campaign_id, []).append(user_id)
    return users


@dataclass(frozen=True)
class Earlier:
    """What a member's posts in a campaign before a transaction's say for the repeats of its posts."""

    targets: dict[int, int]  # target -> the latest quarter they called it in
    quarters: set[int]  # the quarters they called in


_NOTHING_EARLIER = Earlier({}, set())


def _earlier(session: Session, members: Iterable[tuple[int, str]], before_post: int) -> dict[tuple[int, str], Earlier]:
    """(campaign, member) -> what their posts there with ids below `before_post` say (`Earlier`),
    read from `ix_report_calls_member` a row per target and quarter, not per post (grouped by the
    database)."""
    found: dict[tuple[int, str], Earlier] = {}
    query = "SELECT user_id, target_id, quarter FROM report_calls WHERE campaign_id = {0} AND post_id < {1} AND user_id"
    for campaign_id, theirs in _by_campaign(members).items():
        rows = _rows_in(session, query, theirs, (campaign_id, before_post), " GROUP BY user_id, target_id, quarter")
        for user_id, target_id, quarter in rows:
            seen = found.get((campaign_id, user_id))
            if seen is None:
                seen = found[(campaign_id, user_id)] = Earlier({}, set())
            if quarter > seen.targets.get(target_id, -1):
                seen.targets[target_id] = quarter
            seen.quarters.add(quarter)
    return found


def _places(session: Session, target_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Target id -> its state and district (as `report_targets` keeps them)."""
    query = "SELECT id, state, district FROM report_targets WHERE id"
    return {target_id: (state, district) for target_id, state, district in _rows_in(session, query, target_ids)}


def _rows_in(
    session: Session, query: str, values: Iterable[Any], before: tuple[Any, ...] = (), after: str = ""
) -> Iterator[tuple[Any, ...]]:
    """The rows of `query` (SQL ending in a column; `{0}`, `{1}`, ... where the parameters
    `before` go) `IN` these values, `after` it, read straight from the driver `_CHUNK` values a
    statement: SQLAlchemy's expanding `IN` and its rows cost more than the importer's reads."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = numbered_marks(session, len(before) + len(chunk))
        sql = f"{query.format(*marks[: len(before)])} IN ({', '.join(marks[len(before) :])}){after}"
        yield from execute(session, sql, (*before, *chunk), numbered=True).fetchall()


def _repeats_where(table: sa.Table, campaign_id: int, posts: Sequence[tuple[int, ...]]) -> Iterator[list[Any]]:
    """The conditions that find these posts' (quarter, post, ...) rows of a campaign in
    `report_repeats` or `report_week_repeats`, by key: the posts' quarters and ids."""
    for start in range(0, len(posts), _CHUNK):
        chunk = posts[start : start + _CHUNK]
        yield [
            table.c.campaign_id == campaign_id,
            table.c.quarter.in_(sorted({post[0] for post in chunk})),
            table.c.post_id.in_(sorted({post[1] for post in chunk})),
        ]


def week_repeats_of(
    campaign_id: int, posts: Iterable[tuple[Any, ...]], zone: str, earlier: Iterable[int] = ()
) -> Iterator[tuple[int, ...]]:
    """A member's posts (quarter, id, ...) in a campaign, all of them or those after the quarters
    `earlier` the member called in before them: the rows of `report_week_repeats`
    (`WEEK_REPEAT_COLUMNS`) of those that are their member's first in a local hour of `zone` and
    whose member called in the same weekday-hour before."""
    latest: dict[int, int] = {}  # weekday-hour -> quarter
    last_hour = None
    for quarter in sorted(earlier):
        last_hour, cell = hour_of(zone, quarter)
        latest[cell] = quarter
    for quarter, post_id, *_ in sorted(posts):  # (by quarter and id: no two posts share an id)
        hour, cell = hour_of(zone, quarter)
        if hour != last_hour and cell in latest:
            yield (campaign_id, quarter, post_id, cell, latest[cell])
        latest[cell], last_hour = quarter, hour


def zone_of_campaign(timezone: str | None) -> str:
    """The zone a campaign's weekday-hours are kept in: its own, or UTC."""
    return timezone or "UTC"


def zones_of(session: Session, campaign_ids: Iterable[int], *, locked: bool = True) -> dict[int, str]:
    """Campaign id -> the zone its weekday-hours are kept in, read under a share lock on
    PostgreSQL unless not `locked` (a change of zone, `rezone`, holds the campaign's row until it
    commits)."""
    found = _rows_in(
        session, "SELECT id, timezone FROM campaigns WHERE id", campaign_ids, after=for_share(session) if locked else ""
    )
    return {campaign_id: zone_of_campaign(timezone) for campaign_id, timezone in found}


def rezone(session: Session, campaign_id: int) -> int:
    """Count a campaign's weekday-hour repeats (`report_week_repeats`) again, in the zone it has
    now, in the caller's transaction (which changed it, and so holds its row: the importers wait);
    how many rows it has. Reads the campaign's posts' rows: seconds at a million posts."""
    zone = zones_of(session, [campaign_id])[campaign_id]
    session.execute(sa.delete(_week_repeats).where(_week_repeats.c.campaign_id == campaign_id))
    theirs: dict[str, list[tuple[int, int]]] = {}
    # (straight from the driver: SQLAlchemy's rows cost more than the rest of the count)
    query = f"SELECT user_id, quarter, post_id FROM report_calls WHERE campaign_id = {placeholder(session)}"
    for user_id, quarter, post_id in execute(session, query, (campaign_id,)).fetchall():
        theirs.setdefault(user_id, []).append((quarter, post_id))
    rows = sorted(
        row for posts in theirs.values() if len(posts) > 1 for row in week_repeats_of(campaign_id, posts, zone)
    )
    insert_rows(session, _week_repeats, WEEK_REPEAT_COLUMNS, rows)
    return len(rows)


def day_of(quarter: int) -> int:
    """The UTC day (days since 1970) a quarter hour is in: what the sums by day are keyed by."""
    return quarter // QUARTERS_A_DAY


def sum_keys(campaign_id: int, quarter: int, action_id: int, source_id: int, target: Any) -> tuple[Key, ...]:
    """The keys of the kept sums (in `SUMS`' order) a post of this quarter and target adds to."""
    day, hour = day_of(quarter), quarter // QUARTERS_AN_HOUR
    return (
        (campaign_id, quarter, action_id, source_id),
        (campaign_id, hour, action_id, source_id),
        (campaign_id, day, action_id, source_id),
        (campaign_id, day, action_id, source_id, target),
        (campaign_id, hour, action_id, source_id, target),
    )


def target_ids(session: Session, targets: Iterable[Target]) -> dict[Target, int]:
    """The ids of these targets, made now for those never seen (race-free: the unique target decides)."""
    wanted = set(targets)
    if not wanted:
        return {}
    rows = sorted((t.name, t.title, t.district, state_of(t.district)) for t in wanted)
    insert_rows(session, _targets, ("name", "title", "district", "state"), rows, conflict="ON CONFLICT DO NOTHING")
    query = "SELECT id, name, title, district FROM report_targets WHERE name"  # (its unique index leads with it)
    ids = {
        Target(name, title, district): target_id
        for target_id, name, title, district in _rows_in(session, query, {t.name for t in wanted})
    }
    return {target: ids[target] for target in wanted}


_OUTCOME_AT = {outcome: 1 + index for index, outcome in enumerate(OUTCOMES)}  # its place in FIGURES
_SECONDS_AT, _NEW_AT = FIGURES.index("talk_seconds"), FIGURES.index("new_members")


def count_posts(session: Session, posts: Sequence[Counted]) -> None:
    """Add posts made to this transaction's changes of the figures (written out plainly: the
    importer counts every post it makes with this, in its batch's transaction)."""
    if not posts:
        return
    ids = target_ids(session, {post.target for post in posts})
    changes = part(session, ReportChanges)
    every_sum, made, width = changes.sums(), changes.made, len(FIGURES)
    last_calls, posts_made = changes.last_calls, changes.posts
    for post in posts:
        quarter = quarter_of(post.call_timestamp)
        target_id = ids[post.target]
        outcome_at, seconds, new = _OUTCOME_AT[post.outcome], post.seconds, 1 if post.new_member else 0
        campaign_id, action_id, source_id = post.campaign_id, post.action_id, post.source_campaign_id
        for sums, scope in zip(
            every_sum, sum_keys(campaign_id, quarter, action_id, source_id, target_id), strict=True
        ):  # (a post's figures: 1 call, 1 in its outcome, its seconds, 1 if it made its member)
            kept = sums.get(scope) or sums.setdefault(scope, [0] * width)
            kept[0] += 1
            kept[outcome_at] += 1
            kept[_SECONDS_AT] += seconds
            kept[_NEW_AT] += new
        figures = [0] * width
        figures[0] = figures[outcome_at] = 1
        figures[_SECONDS_AT], figures[_NEW_AT] = seconds, new
        made.append((campaign_id, quarter, post.post_id, action_id, source_id, target_id, post.user_id, *figures))
        posts_made.setdefault((campaign_id, post.user_id), []).append((quarter, post.post_id, target_id))
        for member in ((campaign_id, post.user_id), (ANY_CAMPAIGN, post.user_id)):
            if last_calls.get(member, quarter - 1) < quarter:
                last_calls[member] = quarter


_CHUNK = 500  # (campaign, quarter) pairs a statement names at most


def member_quarters(session: Session, user_id: str, campaign_id: int | None = None) -> set[tuple[int, int]]:
    """The (campaign, quarter) pairs a member's posts (in one campaign, or any) are counted in."""
    query = sa.select(Post.campaign_id, Post.call_timestamp).where(Post.northstar_id == user_id)
    if campaign_id is not None:
        query = query.where(Post.campaign_id == campaign_id)
    return {(campaign, quarter_of(moment)) for campaign, moment in session.execute(query) if moment is not None}


def _member_where(user_id: str, pairs: Iterable[tuple[int, int]]) -> Iterator[list[Any]]:
    """The conditions that find a member's rows in `report_calls` in (campaign, quarter) pairs:
    a campaign and some of its quarters each, which SQLite reads by primary key (a row value
    `(campaign_id, quarter) IN (VALUES ...)` it reads by scanning the table: 66 ms at 1,000,000
    posts)."""
    quarters: dict[int, list[int]] = {}
    for campaign_id, quarter in sorted(set(pairs)):
        quarters.setdefault(campaign_id, []).append(quarter)
    for campaign_id, theirs in quarters.items():
        for start in range(0, len(theirs), _CHUNK):
            yield [
                _calls.c.campaign_id == campaign_id,
                _calls.c.quarter.in_(theirs[start : start + _CHUNK]),
                _calls.c.user_id == user_id,
            ]


def _member_rows(
    session: Session, user_id: str, pairs: Iterable[tuple[int, int]], columns: Sequence[str]
) -> Iterator[Any]:
    """A member's rows in `report_calls` (these columns) in the (campaign, quarter) pairs given."""
    for where in _member_where(user_id, pairs):
        yield from session.execute(sa.select(*(_calls.c[name] for name in columns)).where(*where)).all()


def uncount_member(session: Session, user_id: str, campaign_quarters: Iterable[tuple[int, int]]) -> None:
    """Take a member's posts out of the figures (an erasure), in the caller's transaction: every
    row of theirs in `report_calls` (found in the (campaign, quarter) pairs their posts are in)
    leaves the kept sums and is deleted, and so is the member in `report_members` (under their
    campaigns and `ANY_CAMPAIGN`), in the counts of last calls, and each post's gap since the
    previous one and each of their repeats (all of theirs go: no other post's gap or repeat
    changes)."""
    changes = part(session, ReportChanges)
    pairs = sorted(set(campaign_quarters))
    columns = ("campaign_id", "quarter", "post_id", "action_id", "source_campaign_id", "target_id", *FIGURES)
    theirs: dict[int, list[tuple[int, int]]] = {}
    for campaign_id, quarter, post_id, action_id, source, target_id, *values in _member_rows(
        session, user_id, pairs, columns
    ):
        theirs.setdefault(campaign_id, []).append((quarter, post_id))
        for sums, scope in zip(
            changes.sums(), sum_keys(campaign_id, quarter, action_id, source, target_id), strict=True
        ):
            kept = sums.setdefault(scope, [0] * len(FIGURES))
            for index, value in enumerate(values):
                kept[index] -= value
    for where in _member_where(user_id, pairs):
        session.execute(sa.delete(_calls).where(*where))
    zones_of(session, theirs)  # (their weekday-hour repeats are not counted again meanwhile)
    for campaign_id, posts in theirs.items():
        changes.gap(campaign_id, posts, -1)
        for table in (_repeats, _week_repeats):
            for where in _repeats_where(table, campaign_id, posts):
                session.execute(sa.delete(table).where(*where))
    campaigns = sorted({ANY_CAMPAIGN, *(campaign for campaign, _ in pairs)})
    for member in [key for key in changes.last_calls if key[1] == user_id]:
        del changes.last_calls[member]
    for start in range(0, len(campaigns), _CHUNK):
        left = session.execute(
            sa.delete(_members)
            .where(_members.c.campaign_id.in_(campaigns[start : start + _CHUNK]), _members.c.user_id == user_id)
            .returning(_members.c.campaign_id, _members.c.last_quarter)
        )
        for campaign_id, last in left:
            changes.move(campaign_id, last, -1)


# -- recounting them ----------------------------------------------------------------------------

# What a post's details mean for the results, as its source wrote them: (status, seconds,
# (target's name, title, district)). CallPower's: `callpower.source.CallPower.reported`.
ReadDetails = Callable[[dict[str, Any]], tuple[str, int, tuple[str | None, str | None, str | None]]]


@dataclass(frozen=True)
class Kept:
    sums: tuple[dict[tuple[Any, ...], tuple[int, ...]], ...]  # in `SUMS`' order
    calls: dict[tuple[Any, ...], tuple[int, ...]]
    members: dict[tuple[int, str], int]
    last_calls: dict[tuple[int, int], int]
    gaps: dict[tuple[int, int, int], int]
    # (campaign, quarter, post) -> target and previous calls to it, its state and its district
    repeats: dict[tuple[int, int, int], tuple[Any, ...]]
    # (campaign, quarter, post) -> weekday-hour and previous call in it
    week_repeats: dict[tuple[int, ...], tuple[int, ...]]


def kept(session: Session) -> Kept:
    """The figures as kept (sums at 0 left out): the sums by each of `SUMS`' keys, each post's row by
    (campaign, quarter, post) with its action, source campaign, target and member, and each member's
    last call by campaign (and in any) (targets by name, not id)."""
    names = {row.id: Target(row.name, row.title, row.district) for row in session.execute(sa.select(_targets))}

    def named(key: tuple[Any, ...], names_in: tuple[str, ...]) -> tuple[Any, ...]:
        return tuple(names[value] if name == "target_id" else value for name, value in zip(names_in, key, strict=True))

    sums = tuple(
        {
            named(tuple(row[: len(key)]), key): tuple(row[len(key) :])
            for row in session.execute(sa.select(*(table.c[n] for n in key), *(table.c[n] for n in FIGURES)))
            if any(row[len(key) :])
        }
        for table, key in SUMS
    )
    calls = {
        tuple(row[:3]): (row[3], row[4], names[row[5]], row[6], *row[7:])
        for row in session.execute(sa.select(*(_calls.c[n] for n in CALL_COLUMNS), *(_calls.c[n] for n in FIGURES)))
    }
    members = {
        (campaign_id, user_id): last
        for campaign_id, user_id, last in session.execute(sa.select(*(_members.c[n] for n in MEMBER_COLUMNS)))
    }
    last_calls = {
        (campaign_id, quarter): count
        for campaign_id, quarter, count in session.execute(sa.select(*(_last_calls.c[n] for n in LAST_CALLS_COLUMNS)))
        if count
    }
    gaps = {
        (campaign_id, quarter, since): count
        for campaign_id, quarter, since, count in session.execute(sa.select(*(_gaps.c[n] for n in GAP_COLUMNS)))
        if count
    }
    repeats = {
        tuple(row[:3]): (names[row[3]], *row[4:])
        for row in session.execute(sa.select(*(_repeats.c[n] for n in REPEAT_COLUMNS)))
    }
    week_repeats = {
        tuple(row[:3]): tuple(row[3:])
        for row in session.execute(sa.select(*(_week_repeats.c[n] for n in WEEK_REPEAT_COLUMNS)))
    }
    return Kept(sums, calls, members, last_calls, gaps, repeats, week_repeats)


# A post as the recount reads it: id, campaign, action, source campaign (its call's), member,
# call time, details, whether it is its member's first post.
PostRow = tuple[int, int, int, int | None, str, dt.datetime | None, dict[str, Any] | None, bool]


def counted_of(row: PostRow, read: ReadDetails) -> Counted | None:
    """What a post counts for (None: nothing, without a call time or source campaign)."""
    post_id, campaign_id, action_id, source, user_id, moment, details, first = row
    if moment is None or source is None:
        return None
    status, seconds, named = read(details or {})
    outcome, target = outcome_of(status), Target.of(*named)
    return Counted(post_id, campaign_id, action_id, source, user_id, moment, outcome, seconds, target, first)


def recount(posts: Iterable[PostRow], read: ReadDetails, zones: dict[int, str]) -> Kept:
    """The figures as `posts` (all of them) make them, keyed as `kept` keys them (weekday-hours in
    `zones`, by campaign)."""
    sums: tuple[dict[Key, list[int]], ...] = tuple({} for _ in SUMS)
    calls: dict[Key, tuple[Any, ...]] = {}
    members: dict[tuple[int, str], int] = {}
    member_posts: dict[tuple[int, str], list[tuple[int, int, Target]]] = {}
    for row in posts:
        counted = counted_of(row, read)
        if counted is None:
            continue
        quarter = quarter_of(counted.call_timestamp)
        vector = _vector(counted, 1)
        keys = sum_keys(counted.campaign_id, quarter, counted.action_id, counted.source_campaign_id, counted.target)
        for kept_sums, key in zip(sums, keys, strict=True):
            found = kept_sums.setdefault(key, [0] * len(FIGURES))
            for index, delta in enumerate(vector):
                found[index] += delta
        calls[(counted.campaign_id, quarter, counted.post_id)] = (
            counted.action_id, counted.source_campaign_id, counted.target, counted.user_id, *vector
        )  # fmt: skip
        for member in ((counted.campaign_id, counted.user_id), (ANY_CAMPAIGN, counted.user_id)):
            members[member] = max(members.get(member, quarter), quarter)
        member_posts.setdefault((counted.campaign_id, counted.user_id), []).append(
            (quarter, counted.post_id, counted.target)
        )
    for kept_sums in sums:
        add_every_campaign(kept_sums)
    last_calls: dict[tuple[int, int], int] = {}
    for (campaign_id, _), quarter in members.items():
        last_calls[(campaign_id, quarter)] = last_calls.get((campaign_id, quarter), 0) + 1
    gaps: dict[tuple[int, int, int], int] = {}
    for (campaign_id, _), theirs in member_posts.items():
        for quarter, since in gaps_of(theirs):
            gaps[(campaign_id, quarter, since)] = gaps.get((campaign_id, quarter, since), 0) + 1
    repeats = {
        tuple(row[:3]): tuple(row[3:])
        for (campaign_id, _), theirs in member_posts.items()
        for row in repeats_of(campaign_id, theirs, lambda target: (state_of(target.district), target.district))
    }
    week_repeats = {
        tuple(row[:3]): tuple(row[3:])
        for (campaign_id, _), theirs in member_posts.items()
        for row in week_repeats_of(campaign_id, theirs, zones[campaign_id])
    }
    final = tuple({key: tuple(values) for key, values in kept_sums.items()} for kept_sums in sums)
    return Kept(final, calls, members, last_calls, gaps, repeats, week_repeats)


def _counted(table: Any) -> Any:
    """The rows of a kept table that count (a sum or count at 0 is as good as none)."""
    for name in ("calls", "members"):
        if name in table.c:
            return table.c[name] != 0
    return sa.true()


def rebuild(session: Session, batches: Iterable[Sequence[PostRow]], read: ReadDetails) -> int:
    """Replace the kept figures with a recount of the posts (`batches` of all of them), in the
    caller's transaction (on PostgreSQL the posts are locked against writes meanwhile); how many
    rows were wrong. Counted a batch at a time, as the importer counts: memory stays small at
    any size."""
    transaction(session).parts.pop(ReportChanges, None)
    lock_for_recount(session, "posts")
    connection = session.connection()
    tables = (*(table for table, _ in SUMS), _calls, _members, _last_calls, _gaps, _repeats, _week_repeats)
    for table in tables:
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE before_{table.name} AS SELECT * FROM {table.name}")
        session.execute(sa.delete(table))
    for batch in batches:
        count_posts(session, [counted for row in batch if (counted := counted_of(row, read)) is not None])
        part(session, ReportChanges).before_commit(session)
    wrong = 0
    for table in tables:
        before = sa.table(f"before_{table.name}", *(sa.column(column.name) for column in table.c))
        compared = [column for column in table.c if column.name != "previous_quarter"]  # (how it got there)
        now, then = (sa.select(*(t.c[c.name] for c in compared)).where(_counted(t)) for t in (table, before))
        keys = [column.name for column in table.primary_key]
        differing = sa.union(
            sa.select(*(sa.column(k) for k in keys)).select_from(sa.except_(now, then).subquery()),
            sa.select(*(sa.column(k) for k in keys)).select_from(sa.except_(then, now).subquery()),
        ).subquery()
        wrong += session.scalar(sa.select(sa.func.count()).select_from(differing)) or 0
        connection.exec_driver_sql(f"DROP TABLE before_{table.name}")
    return wrong
