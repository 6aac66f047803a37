"""Points in time: now, in UTC, and the one way every interface writes a time (ISO-8601, `Z`)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso_utc(moment: dt.datetime | None) -> str | None:
    """ISO-8601 in UTC with a `Z`, the form every interface shows times in."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: str) -> dt.datetime:
    """ISO-8601 with `T` or a space, any fraction, any offset; no offset means UTC."""
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
