"""Campaign results read without a row per post where they can (issue #23): figures by UTC hour
(`report_hours`: days, hours and weekday-hours of a zone whose offsets are whole hours are read
from a quarter as many rows as from `report_quarters`), by UTC day
(`report_days`: the totals and the rows by action and campaign of a period are read from its
whole days, and from the quarter hours only at its two edges), by UTC day and target
(`report_target_days`: the targets, states and districts likewise, with the posts' rows at the
edges), and each campaign's members with
the quarter of their last call (`report_members`: the distinct callers of a period that runs to
the scope's last call are a range count, not a count of distinct members over every post).
Both are filled here from `report_calls`, which holds every post's quarter, target and member.

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
QUARTERS_A_DAY = 96


def _figure_columns() -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in FIGURES]


def upgrade() -> None:
    op.create_table(
        "report_hours",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hour", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_figure_columns(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_days",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_figure_columns(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_target_days",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("target_id", sa.Integer(), primary_key=True, autoincrement=False),
        *_figure_columns(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_members",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(24), primary_key=True),
        sa.Column("last_quarter", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_report_members_last", "report_members", ["campaign_id", "last_quarter"])
    day = f"((quarter - ((quarter % {QUARTERS_A_DAY}) + {QUARTERS_A_DAY}) % {QUARTERS_A_DAY}) / {QUARTERS_A_DAY})"
    hour = "((quarter - ((quarter % 4) + 4) % 4) / 4)"  # (floor division, for quarters before 1970 too)
    op.execute(
        f"INSERT INTO report_hours (campaign_id, hour, action_id, source_campaign_id, {', '.join(FIGURES)})"
        f" SELECT campaign_id, {hour}, action_id, source_campaign_id, {', '.join(f'SUM({name})' for name in FIGURES)}"
        f" FROM report_quarters GROUP BY campaign_id, {hour}, action_id, source_campaign_id"
    )
    op.execute(
        f"INSERT INTO report_days (campaign_id, day, action_id, source_campaign_id, {', '.join(FIGURES)})"
        f" SELECT campaign_id, {day}, action_id, source_campaign_id, {', '.join(f'SUM({name})' for name in FIGURES)}"
        f" FROM report_quarters GROUP BY campaign_id, {day}, action_id, source_campaign_id"
    )
    keys = "campaign_id, day, action_id, source_campaign_id, target_id"
    op.execute(
        f"INSERT INTO report_target_days ({keys}, {', '.join(FIGURES)})"
        f" SELECT campaign_id, {day}, action_id, source_campaign_id, target_id,"
        f" {', '.join(f'SUM({name})' for name in FIGURES)}"
        f" FROM report_calls GROUP BY campaign_id, {day}, action_id, source_campaign_id, target_id"
    )
    op.execute(
        "INSERT INTO report_members (campaign_id, user_id, last_quarter)"
        " SELECT campaign_id, user_id, MAX(quarter) FROM report_calls GROUP BY campaign_id, user_id"
    )


def downgrade() -> None:
    op.drop_index("ix_report_members_last", "report_members")
    op.drop_table("report_members")
    op.drop_table("report_target_days")
    op.drop_table("report_days")
    op.drop_table("report_hours")
