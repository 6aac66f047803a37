"""Call counts kept as calls change state: by (CallPower campaign, state), by (day, state), and
rejected calls by (campaign, day, problem), filled from the calls stored so far;
`callpower_campaigns.calls` goes (its total is theirs now). Lists newest first get the index
that fits them: users (created_at, id), a member's signups (northstar_id, id), a signup's posts
(signup_id, id), found by their query plans on 10 million calls (bench/plans.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import collections
import datetime as dt
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASON_LENGTH = 500
NO_CAMPAIGN = 0


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
    op.create_table(
        "call_rejections_by_reason",
        sa.Column("callpower_campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=REASON_LENGTH), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("callpower_campaign_id", "day", "reason"),
    )
    _count_rejections()
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.drop_column("calls")
    op.create_index("ix_users_created_at_id", "users", ["created_at", "id"])
    op.create_index("ix_signups_northstar_id_id", "signups", ["northstar_id", "id"])
    op.create_index("ix_posts_signup_id_id", "posts", ["signup_id", "id"])
    op.drop_index("ix_posts_signup_id", "posts")


def _count_rejections() -> None:
    """Each rejected call under each of its error messages (rejected calls are few)."""
    bind = op.get_bind()
    counts: collections.Counter[tuple[int, dt.date, str]] = collections.Counter()
    rows = bind.execute(
        sa.text(f"SELECT callpower_campaign_id, {_utc_day()}, errors FROM calls WHERE state = 'rejected'")
    )
    for campaign, day, errors in rows:
        if isinstance(errors, str):
            errors = json.loads(errors)
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        messages = {message[:REASON_LENGTH] for found in (errors or {}).values() for message in found}
        for message in messages:
            counts[(NO_CAMPAIGN if campaign is None else campaign, day, message)] += 1
    if counts:
        table = sa.table(
            "call_rejections_by_reason",
            sa.column("callpower_campaign_id", sa.BigInteger),
            sa.column("day", sa.Date),
            sa.column("reason", sa.String),
            sa.column("calls", sa.BigInteger),
        )
        op.bulk_insert(
            table,
            [
                {"callpower_campaign_id": c, "day": d, "reason": r, "calls": n}
                for (c, d, r), n in sorted(counts.items())
            ],
        )


def downgrade() -> None:
    op.create_index("ix_posts_signup_id", "posts", ["signup_id"])
    op.drop_index("ix_posts_signup_id_id", "posts")
    op.drop_index("ix_signups_northstar_id_id", "signups")
    op.drop_index("ix_users_created_at_id", "users")
    with op.batch_alter_table("callpower_campaigns") as batch_op:
        batch_op.add_column(sa.Column("calls", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE callpower_campaigns SET calls = (SELECT coalesce(sum(calls), 0) FROM call_counts_by_campaign "
        "WHERE call_counts_by_campaign.callpower_campaign_id = callpower_campaigns.id)"
    )
    op.drop_table("call_rejections_by_reason")
    op.drop_table("call_counts_by_day")
    op.drop_table("call_counts_by_campaign")
