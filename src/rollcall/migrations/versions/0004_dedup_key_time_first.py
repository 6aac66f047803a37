"""Deduplication keys lead with the call's time, so new keys are appended to the index.

The keys of calls stored before are computed again from their stored records, so a call
delivered again after the upgrade is still recognised. Old keys are hex digests and new ones
start with a time ("2017-11-07T18:54:10Z/..."), so the two never collide mid-way.

The key functions are copied here as they were at this revision (a migration never imports
live code, which may change after it).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
KEY_LENGTH = 64

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("record", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.column("dedup_key", sa.String),
)


def digest_key(record: dict[str, Any]) -> str:
    """The key before this revision: SHA-256 of the normalized record, the status in lower case."""
    normalized = {**record, "status": record["status"].lower()}
    return hashlib.sha256(orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS)).hexdigest()


def time_first_key(record: dict[str, Any]) -> str:
    """The key from this revision on: the call's time, then the digest."""
    return f"{record['call_timestamp']}/{digest_key(record)}"[:KEY_LENGTH]


def _rekey(key_of: Callable[[dict[str, Any]], str]) -> None:
    connection = op.get_bind()
    update = sa.update(calls).where(calls.c.id == sa.bindparam("call_id")).values(dedup_key=sa.bindparam("key"))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(calls.c.id, calls.c.record)
            .where(calls.c.id > last, calls.c.dedup_key.is_not(None))
            .order_by(calls.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(update, [{"call_id": call_id, "key": key_of(record)} for call_id, record in rows])
        last = rows[-1][0]


def upgrade() -> None:
    _rekey(time_first_key)


def downgrade() -> None:
    _rekey(digest_key)
