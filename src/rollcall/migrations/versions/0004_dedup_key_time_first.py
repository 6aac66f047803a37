"""Deduplication keys lead with the call's time (`record.dedup_key_of`), so new keys are appended.

The keys of calls stored before are computed again from their stored records, so a call
delivered again after the upgrade is still recognised. Old keys are hex digests and new ones
start with a time ("2017-11-07T18:54:10Z/..."), so the two never collide mid-way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from rollcall.callpower.record import dedup_key_of, record_digest
from rollcall.db import JSONDocument

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("record", JSONDocument),
    sa.column("dedup_key", sa.String),
)


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
    _rekey(dedup_key_of)


def downgrade() -> None:
    _rekey(record_digest)  # the key before 0004: the digest alone
