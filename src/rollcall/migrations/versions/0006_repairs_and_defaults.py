"""Rejected calls can be repaired and CallPower campaigns given defaults.

`calls.repairs` keeps each operator's corrections (and when) beside the body as received,
`calls.defaulted` names the fields a campaign's default completed, `calls.duplicate_of` points
at the stored call a repaired one turned out to equal; `callpower_campaigns.defaults` holds a
campaign's defaults.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch_op:
        batch_op.add_column(sa.Column("repairs", JSON, nullable=True))
        batch_op.add_column(sa.Column("defaulted", JSON, nullable=True))
        batch_op.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.add_column(sa.Column("defaults", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.drop_column("defaults")
    with op.batch_alter_table("calls") as batch_op:
        batch_op.drop_column("duplicate_of")
        batch_op.drop_column("defaulted")
        batch_op.drop_column("repairs")
