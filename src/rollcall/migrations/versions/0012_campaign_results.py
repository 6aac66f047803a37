"""Campaign results: the figures kept by quarter hour (and by target and member), the targets,
and a campaign's time zone. The figures of the posts already made are counted here, from the
posts and their calls (the reading of a post's details is copied as it is at this revision: a
migration never imports live code).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = ("completed", "busy", "no_answer", "failed", "canceled", "other")
FIGURES = ("calls", *OUTCOMES, "talk_seconds", "new_members")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BATCH = 20_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _figure_columns() -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False, server_default="0") for name in FIGURES]


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("timezone", sa.String(64), nullable=True))
    op.create_table(
        "report_targets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("district", sa.String(255), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.UniqueConstraint("name", "title", "district", name="uq_report_targets_target"),
    )
    op.create_table(
        "report_quarters",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("source_campaign_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_figure_columns(),
        sqlite_with_rowid=False,  # the rows in key order: a period is one range read
    )
    op.create_index("ix_report_quarters_source_campaign_id", "report_quarters", ["source_campaign_id"])
    op.create_table(
        "report_calls",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("post_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("source_campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(24), nullable=False),
        *_figure_columns(),
        sqlite_with_rowid=False,
    )
    _count_existing_posts()


def _outcome(status: Any) -> str:
    name = str(status or "").strip().lower().replace("-", "_").replace(" ", "_")
    return name if name in OUTCOMES else "other"


def _count_existing_posts() -> None:
    """A batch of posts at a time, added to the kept rows (memory stays small at any size)."""
    connection = op.get_bind()
    targets: dict[tuple[str, ...], int] = {}
    after = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT p.id, p.campaign_id, p.action_id, c.callpower_campaign_id, p.northstar_id, p.call_timestamp,"
                " p.details, NOT EXISTS (SELECT 1 FROM posts e WHERE e.northstar_id = p.northstar_id AND e.id < p.id)"
                " FROM posts p JOIN calls c ON c.id = p.call_id WHERE p.id > :after ORDER BY p.id LIMIT :n"
            ),
            {"after": after, "n": BATCH},
        ).all()
        if not rows:
            break
        after = rows[-1][0]
        quarters: dict[tuple[Any, ...], list[int]] = {}
        calls: list[tuple[Any, ...]] = []
        for post_id, campaign_id, action_id, source, user_id, moment, details, first in rows:
            if moment is None or source is None:
                continue
            if isinstance(moment, str):  # SQLite's text: UTC
                moment = dt.datetime.fromisoformat(moment)
            moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
            details = json.loads(details) if isinstance(details, str) else (details or {})
            quarter = (moment - EPOCH) // dt.timedelta(seconds=900)
            target = tuple(str(details.get(f"campaign_target_{part}") or "") for part in ("name", "title", "district"))
            if target not in targets:
                targets[target] = _target_id(connection, target)
            outcome = _outcome(details.get("status_details"))
            seconds = details.get("call_duration")
            vector = [
                1,
                *(1 if outcome == name else 0 for name in OUTCOMES),
                seconds if isinstance(seconds, int) else 0,
                1 if first else 0,
            ]
            found = quarters.setdefault((campaign_id, quarter, action_id, source), [0] * len(FIGURES))
            for index, delta in enumerate(vector):
                found[index] += delta
            calls.append((campaign_id, quarter, post_id, action_id, source, targets[target], user_id, *vector))
        keys = ("campaign_id", "quarter", "action_id", "source_campaign_id")
        if quarters:
            connection.execute(
                sa.text(
                    f"INSERT INTO report_quarters ({', '.join((*keys, *FIGURES))})"
                    f" VALUES ({', '.join(':' + n for n in (*keys, *FIGURES))})"
                    f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET"
                    f" {', '.join(f'{n} = report_quarters.{n} + excluded.{n}' for n in FIGURES)}"
                ),
                [
                    {**dict(zip(keys, k, strict=True)), **dict(zip(FIGURES, v, strict=True))}
                    for k, v in quarters.items()
                ],
            )
        columns = ("campaign_id", "quarter", "post_id", "action_id", "source_campaign_id", "target_id", "user_id")
        if calls:
            connection.execute(
                sa.text(
                    f"INSERT INTO report_calls ({', '.join((*columns, *FIGURES))})"
                    f" VALUES ({', '.join(':' + n for n in (*columns, *FIGURES))})"
                ),
                [dict(zip((*columns, *FIGURES), row, strict=True)) for row in calls],
            )


def _target_id(connection: sa.Connection, target: tuple[str, ...]) -> int:
    name, title, district = target
    values = {"n": name, "t": title, "d": district, "s": district.split("-", 1)[0].strip().upper()}
    connection.execute(
        sa.text("INSERT INTO report_targets (name, title, district, state) VALUES (:n, :t, :d, :s)"), values
    )
    found: int = connection.execute(
        sa.text("SELECT id FROM report_targets WHERE name = :n AND title = :t AND district = :d"), values
    ).scalar_one()
    return found


def downgrade() -> None:
    op.drop_table("report_calls")
    op.drop_index("ix_report_quarters_source_campaign_id", "report_quarters")
    op.drop_table("report_quarters")
    op.drop_table("report_targets")
    op.execute("ALTER TABLE campaigns DROP COLUMN timezone")  # (SQLite 3.35+ and PostgreSQL alike)
