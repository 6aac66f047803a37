"""Posts whose member called the same state before in the campaign, with the quarters of their
previous calls to the same target, state and district (`report_repeats`): the distinct callers
of one campaign by target, state or district are its calls less the rows whose previous call is
in the period, a read of a few rows rather than a count of distinct members over every post of
the period. An index on `report_calls` by campaign, member and target, which the importer reads
a returning member's posts and targets from. Filled from `report_calls`.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = {"target": "c.target_id", "state": "t.state", "district": "t.district"}  # what a previous call shares


def upgrade() -> None:
    op.create_index("ix_report_calls_member", "report_calls", ["campaign_id", "user_id", "target_id"])
    op.create_table(
        "report_repeats",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("post_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        *(sa.Column(f"previous_{kind}", sa.Integer(), nullable=True) for kind in KINDS),
        sqlite_with_rowid=False,
    )
    previous = ", ".join(
        f"LAG(c.quarter) OVER (PARTITION BY c.campaign_id, c.user_id, {key} ORDER BY c.quarter, c.post_id)"
        f" AS previous_{kind}"
        for kind, key in KINDS.items()
    )
    columns = ", ".join(f"previous_{kind}" for kind in KINDS)
    op.execute(  # (a post that repeats its target or district repeats its state)
        f"INSERT INTO report_repeats (campaign_id, quarter, post_id, target_id, {columns})"
        f" SELECT campaign_id, quarter, post_id, target_id, {columns} FROM ("
        f"  SELECT c.campaign_id, c.quarter, c.post_id, c.target_id, {previous}"
        "  FROM report_calls c JOIN report_targets t ON t.id = c.target_id"
        " ) AS posts WHERE previous_state IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("report_repeats")
    op.drop_index("ix_report_calls_member", table_name="report_calls")
