"""How many members' last call in a campaign (and in any, under campaign 0) is in each quarter
hour (`report_last_calls`): the distinct callers of a period that runs to the last call are a sum
over the period's quarters, as many rows at ten million posts as at one, rather than a count of
the members whose last call is in it (2.4 million rows for a year at ten million posts). Each
member's row in `report_members` gains the quarter it moved from (`previous_quarter`), which the
importer's upsert returns to move the member's count from one quarter to the other. Filled from
`report_members`.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_last_calls",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("members", sa.BigInteger(), nullable=False, server_default="0"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("report_members") as table:
        table.add_column(sa.Column("previous_quarter", sa.Integer(), nullable=True))
    op.execute(
        "INSERT INTO report_last_calls (campaign_id, last_quarter, members)"
        " SELECT campaign_id, last_quarter, COUNT(*) FROM report_members GROUP BY campaign_id, last_quarter"
    )


def downgrade() -> None:
    with op.batch_alter_table("report_members") as table:
        table.drop_column("previous_quarter")
    op.drop_table("report_last_calls")
