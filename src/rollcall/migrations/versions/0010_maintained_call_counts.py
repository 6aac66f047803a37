"""Call counts kept as calls change state: by (CallPower campaign, state) and by (day, state),
filled from the calls stored so far; `callpower_campaigns.calls` goes (its total is theirs now).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc_day() -> str:
    if op.get_bind().dialect.name == "sqlite":
        return "date(received_at)"
    return "CAST(timezone('UTC', received_at) AS DATE)"


def upgrade() -> None:
    op.create_table(
        "call_counts_by_campaign",
        sa.Column("callpower_campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("callpower_campaign_id", "state"),
    )
    op.create_table(
        "call_counts_by_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "state"),
    )
    op.execute(
        "INSERT INTO call_counts_by_campaign (callpower_campaign_id, state, calls) "
        "SELECT callpower_campaign_id, state, count(*) FROM calls "
        "WHERE callpower_campaign_id IS NOT NULL GROUP BY callpower_campaign_id, state"
    )
    day = _utc_day()
    op.execute(
        f"INSERT INTO call_counts_by_day (day, state, calls) "
        f"SELECT {day}, state, count(*) FROM calls GROUP BY {day}, state"
    )
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.drop_column("calls")


def downgrade() -> None:
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.add_column(sa.Column("calls", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE callpower_campaigns SET calls = (SELECT coalesce(sum(calls), 0) FROM call_counts_by_campaign "
        "WHERE call_counts_by_campaign.callpower_campaign_id = callpower_campaigns.id)"
    )
    op.drop_table("call_counts_by_day")
    op.drop_table("call_counts_by_campaign")
