"""The audit log (who erased or exported a member's data, and when), and when the retention
removed a call's body.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("details", JSON, nullable=True),
    )
    op.add_column("calls", sa.Column("body_removed_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as calls:
        calls.drop_column("body_removed_at")
    op.drop_table("audit_log")
