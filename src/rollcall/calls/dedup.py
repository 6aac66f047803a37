"""The secret the de-duplication keys are made with (`Source.dedup_key`).

It is `ROLLCALL_DEDUP_SECRET` when set, else the one migration 0009 generated and stored in the
database beside the other generated secrets, so every process and machine on the database keys
alike. Changing it makes every stored call unrecognisable to a replay (docs/deploy.md).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from rollcall.credentials import stored_secret
from rollcall.db import transaction

DEDUP_SECRET = "dedup_secret"  # its name among the stored secrets
_stored: dict[str, bytes] = {}  # by database: it never changes while a process runs


class NoDedupSecret(RuntimeError):
    def __init__(self) -> None:
        super().__init__("the database has no dedup secret: run `rollcall migrate`")


def dedup_secret(session: Session) -> bytes:
    configured = transaction(session).database.settings.dedup_secret
    if configured:
        return configured.encode()
    database = session.get_bind().engine.url.render_as_string(hide_password=True)
    if database not in _stored:
        value = stored_secret(session, DEDUP_SECRET)
        if not value:
            raise NoDedupSecret()
        _stored[database] = value.encode()
    return _stored[database]
