"""Indexes for reading calls: newest first by state, CallPower campaign or mobile; by arrival day.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_callpower_campaign_id_state")
        batch_op.drop_index("ix_calls_mobile")
        batch_op.create_index("ix_calls_callpower_campaign_id_id", ["callpower_campaign_id", "id"])
        batch_op.create_index("ix_calls_mobile_id", ["mobile", "id"])
        batch_op.create_index("ix_calls_state_id", ["state", "id"])
        batch_op.create_index("ix_calls_received_at", ["received_at"])
        batch_op.create_index("ix_calls_state_received_at", ["state", "received_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_index("ix_calls_state_received_at")
        batch_op.drop_index("ix_calls_received_at")
        batch_op.drop_index("ix_calls_state_id")
        batch_op.drop_index("ix_calls_mobile_id")
        batch_op.drop_index("ix_calls_callpower_campaign_id_id")
        batch_op.create_index("ix_calls_mobile", ["mobile"])
        batch_op.create_index("ix_calls_callpower_campaign_id_state", ["callpower_campaign_id", "state"])
