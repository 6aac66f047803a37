"""CallPower campaigns seen, with their call counts; index for counting calls by state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "callpower_campaigns",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("first_call_at", TIMESTAMP, nullable=True),
        sa.Column("last_call_at", TIMESTAMP, nullable=True),
        sa.Column("first_received_at", TIMESTAMP, nullable=False),
        sa.Column("last_received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Calls stored before this table existed.
    op.execute(
        "INSERT INTO callpower_campaigns "
        "(id, name, calls, first_call_at, last_call_at, first_received_at, last_received_at) "
        "SELECT callpower_campaign_id, max(callpower_campaign_name), count(*), min(call_timestamp), "
        "max(call_timestamp), min(received_at), max(received_at) "
        "FROM calls WHERE callpower_campaign_id IS NOT NULL GROUP BY callpower_campaign_id"
    )
    with op.batch_alter_table("calls") as batch_op:
        batch_op.create_index("ix_calls_state_callpower_campaign_id", ["state", "callpower_campaign_id"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_state_callpower_campaign_id")
    op.drop_table("callpower_campaigns")
