"""The erasure ledger: every erasure, written down so that a restored backup forgets no one.

A backup taken before an erasure still holds the member. So each erasure is kept twice: as a row
of `erasures` in the database (in the erasure's own transaction) and as a line of
`erasures.jsonl` in the backup directory (`ROLLCALL_BACKUP_DIR`, appended once the erasure has
committed, synced to disk). An entry holds the member's id, the de-duplication keys of their
stored calls (keyed already: `calls.dedup`) with each call's campaign and times, and a keyed hash
of their number; never the number itself.

`rollcall restore` and `rollcall serve` (at start, and the backup schedule each interval) bring
the two together (`backups.reconcile`): an entry the database lacks is applied again (the member
erased, their calls scrubbed, and a call of theirs that the backup never held is written as an
`erased` call, so a replay of it by CallPower is recognised and makes nothing); an entry the file
lacks is appended to it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from rollcall.db import Base, JSONDocument, UTCDateTime
from rollcall.times import iso_utc, parse_timestamp

LEDGER_FILE = "erasures.jsonl"


class Erasure(Base):
    """One erasure, as the ledger keeps it (see the module's docstring)."""

    __tablename__ = "erasures"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    user_id: Mapped[str] = mapped_column(sa.String(64))
    mobile_hash: Mapped[str | None] = mapped_column(sa.String(64))
    # [[dedup key, CallPower campaign id, received at, call timestamp], ...] (times ISO, UTC)
    calls: Mapped[list[list[Any]]] = mapped_column(JSONDocument)


@dataclass(frozen=True)
class ErasedCall:
    """What the ledger keeps of one erased call: enough to recognise it when it is sent again."""

    dedup_key: str
    callpower_campaign_id: int | None
    received_at: dt.datetime
    call_timestamp: dt.datetime | None

    def row(self) -> list[Any]:
        return [
            self.dedup_key,
            self.callpower_campaign_id,
            iso_utc(self.received_at),
            iso_utc(self.call_timestamp) if self.call_timestamp else None,
        ]

    @classmethod
    def of_row(cls, row: list[Any]) -> ErasedCall:
        key, campaign, received, moment = row
        return cls(str(key), campaign, parse_timestamp(received), parse_timestamp(moment) if moment else None)


@dataclass(frozen=True)
class Entry:
    id: str
    erased_at: dt.datetime
    user_id: str
    mobile_hash: str | None
    calls: tuple[ErasedCall, ...]

    def line(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "erased_at": iso_utc(self.erased_at),
                "user_id": self.user_id,
                "mobile_hash": self.mobile_hash,
                "calls": [call.row() for call in self.calls],
            },
            separators=(",", ":"),
        )

    @classmethod
    def of_row(cls, row: Erasure) -> Entry:
        return cls(row.id, row.erased_at, row.user_id, row.mobile_hash, tuple(map(ErasedCall.of_row, row.calls)))

    def stored(self) -> Erasure:
        return Erasure(
            id=self.id,
            erased_at=self.erased_at,
            user_id=self.user_id,
            mobile_hash=self.mobile_hash,
            calls=[call.row() for call in self.calls],
        )


class DamagedLedger(Exception):
    """A line of the ledger file cannot be read."""


def mobile_hash(secret: bytes, mobile: str | None) -> str | None:
    """A keyed hash of a normalized number: it tells whether a number was erased to whoever
    holds the key, and nothing to whoever holds only the ledger."""
    if not mobile:
        return None
    return hmac.new(secret, b"erased mobile:" + mobile.encode(), hashlib.sha256).hexdigest()


def new_entry(user_id: str, mobile_digest: str | None, calls: Iterable[ErasedCall], at: dt.datetime) -> Entry:
    return Entry(uuid.uuid4().hex, at, user_id, mobile_digest, tuple(calls))


def record(session: Session, entry: Entry) -> None:
    """Keep the entry in the database, in the erasure's transaction."""
    session.add(entry.stored())


def is_recorded(session: Session, entry_id: str) -> bool:
    return session.get(Erasure, entry_id) is not None


def recorded(session: Session) -> list[Entry]:
    return [Entry.of_row(row) for row in session.scalars(sa.select(Erasure).order_by(Erasure.erased_at, Erasure.id))]


def ledger_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / LEDGER_FILE


def read(directory: str | os.PathLike[str]) -> list[Entry]:
    """The entries of the ledger file in `directory` (none if there is no file). A line cut
    short at the end (a crash while appending) is ignored; a damaged line elsewhere is refused."""
    path = ledger_path(directory)
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            entries.append(
                Entry(
                    str(document["id"]),
                    parse_timestamp(document["erased_at"]),
                    str(document["user_id"]),
                    document.get("mobile_hash"),
                    tuple(map(ErasedCall.of_row, document["calls"])),
                )
            )
        except (ValueError, KeyError, TypeError) as error:
            if number == len(lines):  # the last line, unfinished: its erasure is still in the database
                break
            raise DamagedLedger(f"{path}, line {number}: {error}") from None
    return entries


def append(directory: str | os.PathLike[str], entries: Iterable[Entry]) -> int:
    """Append entries to the ledger file (made if need be), synced to disk before returning."""
    lines = [entry.line() + "\n" for entry in entries]
    if not lines:
        return 0
    path = ledger_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    made = not path.exists()
    _drop_unfinished_line(path)
    with open(path, "a", encoding="utf-8") as file:
        file.writelines(lines)
        file.flush()
        os.fsync(file.fileno())
    if made:
        sync_directory(path.parent)
    return len(lines)


def _drop_unfinished_line(path: Path) -> None:
    """Cut off a last line that a crash left unfinished (its erasure is in the database, and is
    appended again whole by `backups.reconcile`). Reads the file only when its last byte is not
    the end of a line."""
    if not path.exists():
        return
    with open(path, "r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        file.seek(0)
        file.truncate(file.read().rfind(b"\n") + 1)


def sync_directory(directory: Path) -> None:
    """Make a file's new name durable: sync the directory that holds it."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def missing_from(entries: Iterable[Entry], known: Iterable[str]) -> Iterator[Entry]:
    seen = set(known)
    for entry in entries:
        if entry.id not in seen:
            seen.add(entry.id)
            yield entry
