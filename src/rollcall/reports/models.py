"""Campaign results, kept as calls become posts: figures by quarter hour (UTC), by UTC hour and day, and by UTC
day and target, each post's figures with its quarter, target and member (what distinct callers are
counted from, and the targets at a period's edges), each campaign's members with their last
call, and the targets themselves. The API's shapes of a report."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Mapped, mapped_column

from rollcall.activity.models import USER_ID_LENGTH
from rollcall.db import Base
from rollcall.fields import TEXT_LENGTH, WORD_LENGTH

QUARTERS_AN_HOUR, QUARTERS_A_DAY = 4, 96
QUARTER = 900  # seconds: every time zone's hours and days begin on a quarter hour (UTC+5:45, +8:45, ...)
OUTCOMES = ("completed", "busy", "no_answer", "failed", "canceled", "other")
# What each kept row holds: posts, posts by outcome (they add up to `calls`), seconds talked,
# members whose first call is among them.
FIGURES = ("calls", *OUTCOMES, "talk_seconds", "new_members")


class _Figures:
    """The `FIGURES` columns, as both kept tables hold them (after their keys)."""

    calls: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    completed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    busy: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    no_answer: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    failed: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    canceled: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    other: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    talk_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    new_members: Mapped[int] = mapped_column(sa.BigInteger, default=0)


assert tuple(name for name in _Figures.__annotations__) == FIGURES


class ReportTarget(Base):
    """A target as its calls name it (a blank part is ""), and its state (from the district)."""

    __tablename__ = "report_targets"
    __table_args__ = (sa.UniqueConstraint("name", "title", "district", name="uq_report_targets_target"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    title: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    district: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    state: Mapped[str] = mapped_column(sa.String(WORD_LENGTH))


class ReportQuarter(_Figures, Base):
    """A campaign action's posts of one source campaign made in one quarter hour (UTC): what the
    figures by time are read from."""

    __tablename__ = "report_quarters"
    __table_args__ = (
        sa.Index("ix_report_quarters_source_campaign_id", "source_campaign_id"),
        {"sqlite_with_rowid": False},  # SQLite keeps the rows in key order: a period is one range read
    )

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)  # epoch / 900
    action_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)


class ReportCall(_Figures, Base):
    """Each post as the results count it: its quarter hour, action, source campaign, target and
    member, and its figures (a 1 in `calls` and in its outcome's column). What distinct callers
    and the figures by target, state and district are read from. Keyed by campaign, quarter and
    post: a batch's new rows go at the end of their quarter (few pages written per commit)."""

    __tablename__ = "report_calls"
    __table_args__ = (
        # A member's posts in a campaign, with their targets: what the importer reads to find the
        # previous call to the same target, state and district (`report_repeats`).
        sa.Index("ix_report_calls_member", "campaign_id", "user_id", "target_id"),
        {"sqlite_with_rowid": False},
    )

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    post_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    action_id: Mapped[int] = mapped_column(sa.Integer)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger)
    target_id: Mapped[int] = mapped_column(sa.Integer)
    user_id: Mapped[str] = mapped_column(sa.String(USER_ID_LENGTH))


class ReportHour(_Figures, Base):
    """A campaign action's posts of one source campaign in one UTC hour: what the figures by time
    are read from in a zone whose offsets over the period are whole hours (a quarter of the rows
    of `report_quarters`)."""

    __tablename__ = "report_hours"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)  # quarter // 4
    action_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)


class ReportDay(_Figures, Base):
    """A campaign action's posts of one source campaign on one UTC day: what the totals and the
    figures by action and campaign are read from over a period's whole days (its edges, which a
    time zone puts inside UTC days, from `report_quarters`)."""

    __tablename__ = "report_days"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    day: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)  # quarter // 96
    action_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)


class ReportTargetDay(_Figures, Base):
    """A campaign action's posts of one source campaign to one target on one UTC day: what the
    figures by target, state and district are read from over a period's whole days (its edges,
    which a time zone puts inside UTC days, from `report_calls`)."""

    __tablename__ = "report_target_days"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    day: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)  # quarter // 96
    action_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    target_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)


class ReportTargetHour(_Figures, Base):
    """A campaign action's posts of one source campaign to one target in one UTC hour: what the
    offices that stopped answering are read from (the last 24 hours' whole hours; the quarters
    at its edges from `report_calls`), as many rows on the biggest day as on a quiet one."""

    __tablename__ = "report_target_hours"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    hour: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)  # quarter // 4
    action_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    source_campaign_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    target_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)


# The campaign the kept rows of every campaign at once are under (no campaign has id 0): each
# member's last call in any campaign (`report_members`, counted by quarter in
# `report_last_calls`) and, with action and source campaign 0, the sums of every campaign (the
# four tables of sums).
ANY_CAMPAIGN = 0


class ReportMember(Base):
    """A member who called in a campaign, and the quarter of their last call there: the distinct
    callers of a period that runs to the campaign's last call are those whose last call is in it
    (summed by quarter from `report_last_calls`; for several campaigns but not all, a range count
    over `ix_report_members_last`). Under `ANY_CAMPAIGN` each member's last call in any campaign:
    the callers of every campaign at once."""

    __tablename__ = "report_members"
    __table_args__ = (
        sa.Index("ix_report_members_last", "campaign_id", "last_quarter"),
        {"sqlite_with_rowid": False},
    )

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[str] = mapped_column(sa.String(USER_ID_LENGTH), primary_key=True)
    last_quarter: Mapped[int] = mapped_column(sa.Integer)
    # The last call's quarter before the latest upsert moved it (None: the member is new there):
    # what the upsert returns, to move the member in `report_last_calls`.
    previous_quarter: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class ReportLastCalls(Base):
    """How many members' last call in a campaign (under `ANY_CAMPAIGN`: in any) is in a quarter
    hour: the distinct callers of a period that runs to the last call are the sum over the
    period's quarters, a read of at most one row per quarter however many members there are
    (counting the members in `report_members` grew with them: 2.4 million rows for a year at ten
    million posts). A quarter whose members all called again later stays, at 0."""

    __tablename__ = "report_last_calls"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    last_quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    members: Mapped[int] = mapped_column(sa.BigInteger, default=0)


SAME_DAY_AT_MOST = 100  # quarters in the longest local day (25 hours, when the clocks go back)


class ReportGap(Base):
    """How many of a campaign's posts in a quarter hour came how long after their member's
    previous call in the campaign (`since_previous`, in quarters; `SAME_DAY_AT_MOST` for longer or
    none: a call that long after the previous one is never in its local day or hour): a post is
    its member's first of a local day (or hour) when its previous call is in an earlier one, so
    the distinct callers by day or hour are a sum over these rows, in any time zone, a few rows a
    quarter where `report_calls` has a row a post (their order is by quarter, then post)."""

    __tablename__ = "report_gaps"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    since_previous: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    calls: Mapped[int] = mapped_column(sa.BigInteger, default=0)


# What `report_repeats` finds a post's member's previous call by: the same target, state or district.
REPEAT_KINDS = ("target", "state", "district")


class ReportRepeat(Base):
    """A post whose member called the same state before in the campaign (and so perhaps the
    same district and target), with the quarter of their previous call to the same target,
    state and district (None: none): in a period, a member's posts to a target but the first have
    their previous call to it in the period, so the distinct callers by target, state or district
    of one campaign are its calls (kept sums) less these rows whose previous call is in the
    period, a range read of a few rows where `report_calls` has one per post (a member seldom
    calls the same state twice: 11% of the posts at 1,000,000)."""

    __tablename__ = "report_repeats"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    post_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    target_id: Mapped[int] = mapped_column(sa.Integer)
    previous_target: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    previous_state: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    previous_district: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)


class ReportWeekRepeat(Base):
    """A post that is its member's first in a local hour and whose member called in the same local
    weekday-hour (Monday 9:00–10:00, say) before in the campaign, in the campaign's time zone (UTC
    where it has none), with the quarter of that previous call: of a member's local hours in one
    weekday-hour of a period, all but the first have their previous call in it in the period. So
    the distinct callers by weekday-hour of one campaign, in its own zone, are its members' first
    calls of each local hour (from `report_gaps`) less these rows whose previous call is in the
    period. A change of the campaign's time zone counts them again (`figures.rezone`)."""

    __tablename__ = "report_week_repeats"
    __table_args__ = {"sqlite_with_rowid": False}

    campaign_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    quarter: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    post_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    cell: Mapped[int] = mapped_column(sa.SmallInteger)  # weekday (Monday 0) * 24 + hour, local
    previous_quarter: Mapped[int] = mapped_column(sa.Integer)


# -- shapes of the staff API ------------------------------------------------------------------


class Figures(BaseModel):
    calls: int = Field(description="Posts (calls) made in the row.")
    completed: int
    busy: int
    no_answer: int
    failed: int
    canceled: int
    other: int = Field(description="unknown, queued, ringing, in-progress or anything else; the six add up to calls.")
    talk_seconds: int = Field(description="The sum of the calls' durations.")
    callers: int = Field(description="Distinct members with a call in the row.")
    new_members: int = Field(description="Members whose first call known to rollcall is in the row.")


class ReportRow(Figures):
    """A row: its key fields (by grouping) and its figures."""

    model_config = {"extra": "allow"}


class ReportMeta(BaseModel):
    tz: str
    group_by: str
    from_: str = Field(alias="from", description="The first local date of the period.")
    to: str = Field(description="The last local date of the period (inclusive).")
    totals: Figures

    model_config = {"populate_by_name": True}


class Report(BaseModel):
    data: list[dict[str, Any]]
    meta: ReportMeta
