"""The results' sums for every campaign at once: each table of sums (`report_quarters`,
`report_hours`, `report_days`, `report_target_days`) keeps, under campaign 0 (no campaign has
that id) with action and source campaign 0, the sums of every campaign's rows of the same
quarter, hour or day (and target). The all-campaigns Results page reads them: a row per hour or
day rather than one per campaign, action and source campaign. Filled from the rows by campaign.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = ("calls", "completed", "busy", "no_answer", "failed", "canceled", "other", "talk_seconds", "new_members")
# Each table of sums and its keys after the campaign, the action and the source campaign.
TABLES = (
    ("report_quarters", "quarter"),
    ("report_hours", "hour"),
    ("report_days", "day"),
    ("report_target_days", "day, target_id"),
)


def upgrade() -> None:
    sums = ", ".join(f"SUM({name})" for name in FIGURES)
    for table, keys in TABLES:
        op.execute(
            f"INSERT INTO {table} (campaign_id, action_id, source_campaign_id, {keys}, {', '.join(FIGURES)})"
            f" SELECT 0, 0, 0, {keys}, {sums} FROM {table} WHERE campaign_id <> 0 GROUP BY {keys}"
        )


def downgrade() -> None:
    for table, _ in reversed(TABLES):
        op.execute(f"DELETE FROM {table} WHERE campaign_id = 0")
