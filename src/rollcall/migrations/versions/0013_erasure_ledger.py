"""The erasure ledger (`members.ledger`): every erasure from now on, kept so that a restored
backup erases again whoever was erased after it was taken. Erasures made before this revision
are not in it (nothing tells which calls were whose); docs/deploy.md says so.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("mobile_hash", sa.String(64), nullable=True),
        sa.Column("calls", JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasures")
