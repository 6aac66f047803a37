"""The posts' sums by UTC hour and target (`report_target_hours`, and under campaign 0 for every
campaign at once): the offices that stopped answering (calls of the last 24 hours by target) are
read from 24 hours of these rows and the quarters at the window's edges, rather than from every
post of the last 24 hours (27,000 rows at ten million posts, 300,000 on the biggest day on record).
Filled from `report_calls`.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = ("calls", "completed", "busy", "no_answer", "failed", "canceled", "other", "talk_seconds", "new_members")
HOUR = "((quarter - ((quarter % 4) + 4) % 4) / 4)"  # floor division, for quarters before 1970 too


def upgrade() -> None:
    op.create_table(
        "report_target_hours",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("hour", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("target_id", sa.Integer(), primary_key=True, autoincrement=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in FIGURES),
        sqlite_with_rowid=False,
    )
    figures, sums = ", ".join(FIGURES), ", ".join(f"SUM({name})" for name in FIGURES)
    keys = "campaign_id, hour, action_id, source_campaign_id, target_id"
    group = f"campaign_id, {HOUR}, action_id, source_campaign_id, target_id"
    op.execute(
        f"INSERT INTO report_target_hours ({keys}, {figures}) SELECT {group}, {sums} FROM report_calls GROUP BY {group}"
    )
    op.execute(
        f"INSERT INTO report_target_hours ({keys}, {figures}) SELECT 0, hour, 0, 0, target_id, {sums}"
        " FROM report_target_hours WHERE campaign_id <> 0 GROUP BY hour, target_id"
    )


def downgrade() -> None:
    op.drop_table("report_target_hours")
