"""Initial schema: calls, campaigns, actions, users, signups, posts, stored secrets.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Migrations spell out their types so they never change when the models do.
TIMESTAMP = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=True),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("record", JSON_DOCUMENT, nullable=True),
        sa.Column("errors", JSON_DOCUMENT, nullable=True),
        sa.Column("callpower_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("callpower_campaign_name", sa.String(length=255), nullable=True),
        sa.Column("mobile", sa.String(length=32), nullable=True),
        sa.Column("call_timestamp", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("imported_at", TIMESTAMP, nullable=True),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("signup_id", sa.Integer(), nullable=True),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_callpower_campaign_id_state", ["callpower_campaign_id", "state"], unique=False)
        batch_op.create_index("ix_calls_mobile", ["mobile"], unique=False)
        batch_op.create_index("ix_calls_state_next_attempt_at", ["state", "next_attempt_at"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("internal_title", sa.String(length=255), nullable=False),
        sa.Column("cause", sa.String(length=255), nullable=True),
        sa.Column("start_date", TIMESTAMP, nullable=True),
        sa.Column("end_date", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "stored_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("mobile", sa.String(length=32), nullable=False),
        sa.Column("sms_status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("source_detail", sa.String(length=64), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mobile"),
    )
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("post_type", sa.String(length=64), nullable=False),
        sa.Column("action_type", sa.String(length=64), nullable=False),
        sa.Column("callpower_campaign_id", sa.BigInteger(), nullable=True),
        sa.Column("noun", sa.String(length=64), nullable=False),
        sa.Column("verb", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("callpower_campaign_id"),
    )
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_actions_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("northstar_id", sa.String(length=24), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("source_details", sa.String(length=255), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.ForeignKeyConstraint(
            ["northstar_id"],
            ["users.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("northstar_id", "campaign_id", name="uq_signups_user_campaign"),
    )
    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.create_index("ix_signups_campaign_id_id", ["campaign_id", "id"], unique=False)

    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signup_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("northstar_id", sa.String(length=24), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("source_details", sa.String(length=255), nullable=True),
        sa.Column("details", JSON_DOCUMENT, nullable=True),
        sa.Column("call_timestamp", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["actions.id"],
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.ForeignKeyConstraint(
            ["northstar_id"],
            ["users.id"],
        ),
        sa.ForeignKeyConstraint(
            ["signup_id"],
            ["signups.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_id"),
    )
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index("ix_posts_action_id_id", ["action_id", "id"], unique=False)
        batch_op.create_index("ix_posts_campaign_id_id", ["campaign_id", "id"], unique=False)
        batch_op.create_index("ix_posts_northstar_id_id", ["northstar_id", "id"], unique=False)
        batch_op.create_index("ix_posts_signup_id", ["signup_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_signup_id")
        batch_op.drop_index("ix_posts_northstar_id_id")
        batch_op.drop_index("ix_posts_campaign_id_id")
        batch_op.drop_index("ix_posts_action_id_id")

    op.drop_table("posts")
    with op.batch_alter_table("signups", schema=None) as batch_op:
        batch_op.drop_index("ix_signups_campaign_id_id")

    op.drop_table("signups")
    with op.batch_alter_table("actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_actions_campaign_id"))

    op.drop_table("actions")
    op.drop_table("users")
    op.drop_table("stored_secrets")
    op.drop_table("campaigns")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_state_next_attempt_at")
        batch_op.drop_index("ix_calls_mobile")
        batch_op.drop_index("ix_calls_callpower_campaign_id_state")

    op.drop_table("calls")
