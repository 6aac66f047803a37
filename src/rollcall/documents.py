"""Response documents: the shapes the staff API (and the CLI's `--json`, and events) show a
resource in, read straight from its ORM row (`from_attributes`). A resource's fields are its
columns; its document says which of them are shown, and how."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Document(BaseModel):
    """Times are shown as they are held: in UTC (ISO-8601 with `Z`); every time rollcall keeps
    is UTC (`db.UTCDateTime` reads them so, and inputs are turned to UTC as they come in)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: Any) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return cls.model_validate(row).model_dump(mode="json")
