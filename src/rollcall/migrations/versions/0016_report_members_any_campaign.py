"""Each member's last call in any campaign, kept in `report_members` under campaign 0 (no
campaign has that id) beside their last call in each campaign: the distinct callers of every
campaign at once over a period that runs to the last call (the all-campaigns Results page) are
a range count, not a count of distinct members over every campaign's members. Filled from the
members' last calls by campaign.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO report_members (campaign_id, user_id, last_quarter)"
        " SELECT 0, user_id, MAX(last_quarter) FROM report_members WHERE campaign_id <> 0 GROUP BY user_id"
    )


def downgrade() -> None:
    op.execute("DELETE FROM report_members WHERE campaign_id = 0")
