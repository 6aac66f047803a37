"""Posts that are their member's first of a local hour and whose member called in the same local
weekday-hour before in the campaign, in the campaign's time zone (UTC where it has none), with
the quarter of that previous call (`report_week_repeats`): the distinct callers of one campaign
by weekday-hour, in its zone, are its members' first calls of each local hour (`report_gaps`)
less the rows whose previous call is in the period. Filled from `report_calls`, a campaign at a
time (the zones are Python's: zoneinfo).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUARTER, HOUR, DAY = 900, 3600, 86400
COLUMNS = ("campaign_id", "quarter", "post_id", "cell", "previous_quarter")


Seen = dict[int, tuple[tuple[int, int], int]]
Row = tuple[int, ...]


def repeats(campaign_id: int, posts: list[tuple[int, int]], zone: zoneinfo.ZoneInfo, seen: Seen) -> Iterator[Row]:
    """One member's posts (quarter, id) in the campaign: the rows of those that begin a local hour
    and repeat a weekday-hour (`seen`: quarter -> its local hour, as hours since 1970 and offset,
    and weekday-hour, filled as read)."""
    latest: dict[int, int] = {}
    last_hour = None
    for quarter, post_id in sorted(posts):
        if quarter not in seen:
            moment = dt.datetime.fromtimestamp(quarter * QUARTER, zone)
            offset = int((moment.utcoffset() or dt.timedelta()).total_seconds())
            local = quarter * QUARTER + offset
            seen[quarter] = ((local // HOUR, offset), ((local // DAY + 3) % 7) * 24 + local % DAY // HOUR)
        hour, cell = seen[quarter]
        if hour != last_hour and cell in latest:
            yield (campaign_id, quarter, post_id, cell, latest[cell])
        latest[cell], last_hour = quarter, hour


def upgrade() -> None:
    table = op.create_table(
        "report_week_repeats",
        sa.Column("campaign_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("quarter", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("post_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("cell", sa.SmallInteger(), nullable=False),
        sa.Column("previous_quarter", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    connection = op.get_bind()
    zones: dict[int, str | None] = dict(
        (campaign_id, timezone)
        for campaign_id, timezone in connection.execute(sa.text("SELECT id, timezone FROM campaigns"))
    )
    for campaign_id in connection.execute(sa.text("SELECT DISTINCT campaign_id FROM report_calls")).scalars().all():
        zone = zoneinfo.ZoneInfo(zones.get(campaign_id) or "UTC")
        members: dict[str, list[tuple[int, int]]] = {}
        for user_id, quarter, post_id in connection.execute(
            sa.text("SELECT user_id, quarter, post_id FROM report_calls WHERE campaign_id = :c"), {"c": campaign_id}
        ):
            members.setdefault(user_id, []).append((quarter, post_id))
        seen: Seen = {}
        rows = sorted(row for posts in members.values() for row in repeats(campaign_id, posts, zone, seen))
        for start in range(0, len(rows), 10_000):
            chunk = rows[start : start + 10_000]
            connection.execute(table.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in chunk])


def downgrade() -> None:
    op.drop_table("report_week_repeats")
