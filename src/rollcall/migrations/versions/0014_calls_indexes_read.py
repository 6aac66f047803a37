"""The calls table keeps only the indexes a query reads (issue #25): fewer index entries for
every call the intake stores and the importer moves.

Checked by plan (bench/plans.py and the queries outside the pages):
- `ix_calls_received_at` and `ix_calls_state_received_at` served the overview's calls per day
  and the backlog's oldest call; the kept counts (revision 0010) answer the first, and the last
  arrival and the oldest waiting call are the newest and oldest by id (ids grow with arrival):
  both dropped.
- `ix_calls_state_next_attempt_at` (the importer's queue) held every call, imported ones
  included. New calls are now claimed in id order (every new call is due at once) through
  `ix_calls_new`, over the new calls only, and failed ones by retry time through
  `ix_calls_retrying`, over the failed calls only. (Through `ix_calls_state_id` alone,
  PostgreSQL's planner walked the primary key and skipped every imported call.)
- `ix_calls_state_callpower_campaign_id` served the parked calls of one CallPower campaign
  (released when it is mapped, revalidated when its defaults change, the first unmapped call's
  event); now `ix_calls_parked`, over the rejected and unmapped calls only.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "state = 'received'"  # as in rollcall.calls.models, frozen here
RETRYING = "state = 'failed'"
PARKED = "state IN ('rejected', 'unmapped')"


def upgrade() -> None:
    op.drop_index("ix_calls_received_at", table_name="calls")
    op.drop_index("ix_calls_state_received_at", table_name="calls")
    op.drop_index("ix_calls_state_next_attempt_at", table_name="calls")
    op.drop_index("ix_calls_state_callpower_campaign_id", table_name="calls")
    op.create_index("ix_calls_new", "calls", ["id"], sqlite_where=sa.text(NEW), postgresql_where=sa.text(NEW))
    op.create_index(
        "ix_calls_retrying",
        "calls",
        ["state", "next_attempt_at", "id"],
        sqlite_where=sa.text(RETRYING),
        postgresql_where=sa.text(RETRYING),
    )
    op.create_index(
        "ix_calls_parked",
        "calls",
        ["state", "callpower_campaign_id", "id"],
        sqlite_where=sa.text(PARKED),
        postgresql_where=sa.text(PARKED),
    )


def downgrade() -> None:
    op.drop_index("ix_calls_parked", table_name="calls")
    op.drop_index("ix_calls_retrying", table_name="calls")
    op.drop_index("ix_calls_new", table_name="calls")
    op.create_index("ix_calls_state_callpower_campaign_id", "calls", ["state", "callpower_campaign_id"])
    op.create_index("ix_calls_state_next_attempt_at", "calls", ["state", "next_attempt_at"])
    op.create_index("ix_calls_state_received_at", "calls", ["state", "received_at"])
    op.create_index("ix_calls_received_at", "calls", ["received_at"])
