"""Console sessions kept on the server (signing out ends one), and the mobile and call time of
rejected calls read from their bodies.

A member's export and erasure find their calls by their number, exactly (never by a part of it in
the body): rejected calls now keep the mobile the intake's normalizer reads from their body, and
this fills it in for those stored before. The reading is copied here as it is at this revision
(a migration never imports live code, which may change after it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import datetime as dt
import json
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import phonenumbers
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
BATCH = 2_000

calls = sa.table(
    "calls",
    sa.column("id", sa.Integer),
    sa.column("state", sa.String),
    sa.column("raw", sa.Text),
    sa.column("content_type", sa.String),
    sa.column("mobile", sa.String),
    sa.column("call_timestamp", TIMESTAMP),
)
_MOBILE_FIELD = re.compile(r"""(?:"mobile"\s*:\s*(?:"([^"\\]{1,64})"|([0-9]{1,20}))|(?:^|&)mobile=([^&]{1,128}))""")


def _payload(raw: str, content_type: str | None) -> dict[str, Any] | None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if raw.lstrip().startswith("{"):
        try:
            payload = json.loads(raw)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw, keep_blank_values=True))
    return None


def _mobile(value: Any, region: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def _moment(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
    )
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    region = (os.environ.get("ROLLCALL_DEFAULT_REGION") or "US").strip().upper()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(calls.c.id, calls.c.raw, calls.c.content_type)
            .where(calls.c.state == "rejected", calls.c.mobile.is_(None), calls.c.id > after)
            .order_by(calls.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        for call_id, raw, content_type in rows:
            payload = _payload(raw or "", content_type)
            if payload is not None:
                mobile, moment = _mobile(payload.get("mobile"), region), _moment(payload.get("call_timestamp"))
            else:
                found = _MOBILE_FIELD.search(raw or "")
                quoted, bare, form = found.groups() if found else (None, None, None)
                mobile, moment = _mobile(quoted or bare or unquote_plus(form or ""), region), None
            if mobile is None and moment is None:
                continue
            if moment is not None and sqlite:
                moment = moment.replace(tzinfo=None)  # as rollcall stores times in SQLite (naive UTC)
            connection.execute(
                sa.update(calls).where(calls.c.id == call_id).values(mobile=mobile, call_timestamp=moment)
            )


def downgrade() -> None:
    op.execute(sa.update(calls).where(calls.c.state == "rejected").values(mobile=None, call_timestamp=None))
    op.drop_table("console_sessions")
