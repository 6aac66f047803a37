"""Call records from a file (JSON lines or CSV), stored exactly as the intake stores them.

`rollcall calls import` is this: each line or row goes through the one validator, the
campaign's defaults and the de-duplication of the intake; rejected ones are kept as rejected
calls, as the intake keeps them. The running importer then imports what was stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rollcall.callpower.bodies import UnreadableBody, decode_json
from rollcall.callpower.source import CSV_ROWS, JSON_LINES, CallPower
from rollcall.calls.deliveries import store_deliveries
from rollcall.calls.source import Delivery, Refusal
from rollcall.db import Database
from rollcall.errors import RollcallError
from rollcall.progress import Progress, quiet

BATCH = 500  # lines per transaction


class UnreadableFile(RollcallError):
    """The file is not UTF-8 text, or not CSV."""


@dataclass
class FileImport:
    """What became of a file's lines."""

    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    # (line number, its problems) of each rejected line, in file order.
    problems: list[tuple[int, list[str]]] = field(default_factory=list)


def _records(path: Path) -> Iterator[tuple[str, Any]]:
    """(raw text, decoded record or None) of each line of a JSON-lines file or row of a CSV file."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            return
        for row in reader:
            # Kept as the JSON object of its fields: a CSV line means nothing without its header,
            # and a rejected row can then be repaired like any body.
            fields = {key: value for key, value in row.items() if key is not None}
            yield orjson.dumps(fields).decode(), fields
        return
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield line, decode_json(line.encode("utf-8", errors="surrogatepass"))
        except UnreadableBody:
            yield line, None


def _delivery(raw: str, payload: Any, content_type: str, source: CallPower) -> Delivery:
    if payload is None:
        return source.unreadable(Refusal.UNREADABLE, "The line is not valid JSON.", raw=raw, content_type=content_type)
    if not isinstance(payload, dict):
        return source.unreadable(
            Refusal.UNREADABLE, "The line must be a JSON object.", raw=raw, content_type=content_type
        )
    return source.check(payload, raw=raw, content_type=content_type)


def import_file(database: Database, path: Path, source: CallPower, progress: Progress = quiet) -> FileImport:
    """Store the call records of a `.jsonl` or `.csv` file; `BATCH` lines per transaction."""
    content_type = CSV_ROWS if path.suffix.lower() == ".csv" else JSON_LINES
    try:
        records = list(enumerate(_records(path), start=1))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UnreadableFile(f"cannot read {path}: {error}") from None
    report = FileImport()
    for start in range(0, len(records), BATCH):
        chunk = records[start : start + BATCH]
        deliveries = [_delivery(raw, payload, content_type, source) for _, (raw, payload) in chunk]
        with database.writing() as session:
            stored = store_deliveries(session, deliveries, source)
        valid = sum(1 for delivery in stored.deliveries if delivery.document is not None)
        report.stored += stored.new
        report.duplicate += valid - stored.new
        report.rejected += len(chunk) - valid
        for (number, _), delivery in zip(chunk, stored.deliveries, strict=True):
            if delivery.errors:
                report.problems.append((number, [m for messages in delivery.errors.values() for m in messages]))
        progress("lines", start + len(chunk), len(records))
    return report
