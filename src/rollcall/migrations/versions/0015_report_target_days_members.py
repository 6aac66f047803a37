"""Campaign results read without a row per post where they can (issue #23): figures by UTC hour
(`report_hours`: days, hours and weekday-hours of a zone whose offsets are whole hours are read
from a quarter as many rows as from `report_quarters`), by UTC day
(`report_days`: the totals and the rows by action and campaign of a period are read from its
whole days, and from the quarter hours only at its two edges), by UTC day and target
(`report_target_days`: the targets, states and districts likewise, with the posts' rows at the
edges), and each campaign's members with
the quarter of their last call (`report_members`: the distinct callers of a period that runs to
the scope's last call are a range count, not a count of distinct members over every post).
All are filled here: the sums by hour and day from `report_quarters`, the sums by day and target
and the members from `report_calls`, which holds every post's quarter, target and member.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = ("calls", "completed", "busy", "no_answer", "failed", "canceled", "other", "talk_seconds", "new_members")


def _figure_columns() -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in FIGURES]


def _floor(per: int) -> str:
    """SQL: a quarter's hour (per 4) or day (per 96), floor division for quarters before 1970 too."""
    return f"((quarter - ((quarter % {per}) + {per}) % {per}) / {per})"


def _sums_table(name: str, moment: str, *more: sa.Column[Any]) -> None:
    """A table of sums keyed by campaign, `moment` (hour or day), action and source campaign (and `more`)."""
    op.create_table(
        name,
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column(moment, sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *more,
        *_figure_columns(),
        sqlite_with_rowid=False,
    )


# How each table of sums is filled: its time column and how many quarters one holds, the kept
# rows it is summed from, and its keys after the time.
FILLS = (
    ("report_hours", "hour", 4, "report_quarters", "action_id, source_campaign_id"),
    ("report_days", "day", 96, "report_quarters", "action_id, source_campaign_id"),
    ("report_target_days", "day", 96, "report_calls", "action_id, source_campaign_id, target_id"),
)


def upgrade() -> None:
    _sums_table("report_hours", "hour")
    _sums_table("report_days", "day")
    _sums_table(
        "report_target_days", "day", sa.Column("target_id", sa.Integer(), primary_key=True, autoincrement=False)
    )
    op.create_table(
        "report_members",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(24), primary_key=True),
        sa.Column("last_quarter", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_report_members_last", "report_members", ["campaign_id", "last_quarter"])
    for table, moment, per, source, keys in FILLS:
        group = f"campaign_id, {_floor(per)}, {keys}"
        op.execute(
            f"INSERT INTO {table} (campaign_id, {moment}, {keys}, {', '.join(FIGURES)})"
            f" SELECT {group}, {', '.join(f'SUM({name})' for name in FIGURES)} FROM {source} GROUP BY {group}"
        )
    op.execute(
        "INSERT INTO report_members (campaign_id, user_id, last_quarter)"
        " SELECT campaign_id, user_id, MAX(quarter) FROM report_calls GROUP BY campaign_id, user_id"
    )


def downgrade() -> None:
    op.drop_index("ix_report_members_last", "report_members")
    op.drop_table("report_members")
    for table, *_ in reversed(FILLS):
        op.drop_table(table)
