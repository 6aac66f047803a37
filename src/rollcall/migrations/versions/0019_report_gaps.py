"""How many of a campaign's posts in each quarter hour came how long after their member's
previous call there (`report_gaps`, in quarters, 100 for longer or none): the distinct callers of
one campaign by day or hour are a sum over a few rows a quarter, in any time zone, rather than a
count of distinct members over every post of the period (a million rows for a year of a big
campaign). Filled from `report_calls`.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_gaps",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("since_previous", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("calls", sa.BigInteger(), nullable=False, server_default="0"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO report_gaps (campaign_id, quarter, since_previous, calls)"
        " SELECT campaign_id, quarter, CASE WHEN previous IS NULL OR quarter - previous >= 100 THEN 100"
        " ELSE quarter - previous END AS since, COUNT(*) FROM ("
        "  SELECT campaign_id, quarter, LAG(quarter) OVER"
        "  (PARTITION BY campaign_id, user_id ORDER BY quarter, post_id) AS previous FROM report_calls"
        " ) AS posts GROUP BY campaign_id, quarter, since"
    )


def downgrade() -> None:
    op.drop_table("report_gaps")
