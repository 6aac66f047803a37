"""De-duplication keys made with a secret (HMAC-SHA256), so no phone number can be recovered
from a key by trying the few billion possible numbers.

The secret is ROLLCALL_DEDUP_SECRET when set; else one is generated here and stored with the
other generated secrets. The keys of stored calls are computed again from their stored records,
so a call delivered again after the upgrade is still recognised. A call whose record is gone
(erased, or its body removed by the retention) keeps its old key.

The key functions are copied here as they are at this revision (a migration never imports live
code, which may change after it).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5_000
KEY_LENGTH = 64
SECRET_NAME = "dedup_secret"

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("record", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    sa.column("dedup_key", sa.String),
)
stored_secrets = sa.table("stored_secrets", sa.column("name", sa.String), sa.column("value", sa.String))


def _canonical(record: dict[str, Any]) -> bytes:
    return orjson.dumps({**record, "status": record["status"].lower()}, option=orjson.OPT_SORT_KEYS)


def plain_key(record: dict[str, Any]) -> str:
    """The key before this revision: the call's time, then SHA-256 of the normalized record."""
    return f"{record['call_timestamp']}/{hashlib.sha256(_canonical(record)).hexdigest()}"[:KEY_LENGTH]


def keyed_key(secret: bytes) -> Callable[[dict[str, Any]], str]:
    """The key from this revision on: the call's time, then HMAC-SHA256 of the record."""

    def key_of(record: dict[str, Any]) -> str:
        digest = hmac.new(secret, _canonical(record), hashlib.sha256).hexdigest()
        return f"{record['call_timestamp']}/{digest}"[:KEY_LENGTH]

    return key_of


def _secret() -> bytes:
    configured = os.environ.get("ROLLCALL_DEDUP_SECRET")
    if configured:
        return configured.encode()
    connection = op.get_bind()
    stored = connection.scalar(sa.select(stored_secrets.c.value).where(stored_secrets.c.name == SECRET_NAME))
    if stored is None:
        stored = secrets.token_urlsafe(32)
        connection.execute(sa.insert(stored_secrets).values(name=SECRET_NAME, value=stored))
    return str(stored).encode()


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
        keys = [{"call_id": call_id, "key": key_of(record)} for call_id, record in rows if isinstance(record, dict)]
        if keys:  # (a record stored as JSON null is read as None: erased, or its body removed)
            connection.execute(update, keys)
        last = rows[-1][0]


def upgrade() -> None:
    _rekey(keyed_key(_secret()))


def downgrade() -> None:
    _rekey(plain_key)
