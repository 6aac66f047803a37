"""Response documents: the shapes the staff API (and the CLI's `--json`, and events) show a
resource in, read straight from its ORM row (`from_attributes`). A resource's fields are its
columns; its document says which of them are shown, and how."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Document(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _in_utc(cls, value: Any) -> Any:
        """Every time is shown in UTC (ISO-8601 with `Z`), whatever offset it was given with."""
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value

    @classmethod
    def of(cls, row: Any) -> dict[str, Any]:
        """The row as JSON-ready data."""
        return cls.model_validate(row).model_dump(mode="json")
