"""Points in time: now, in UTC, the one way every interface writes a time (ISO-8601, `Z`), and
time zones by their IANA names (from the `tzdata` package where the system has none)."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo


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


class UnknownTimeZone(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is not a time zone: an IANA name such as America/New_York, Europe/Paris or UTC")


@functools.cache
def zone_names() -> frozenset[str]:
    """Every IANA time zone name known here."""
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """An IANA time zone by name (`Europe/Paris`); `UnknownTimeZone` for any other text (a file
    path, `localtime`, a blank)."""
    if name not in zone_names():
        raise UnknownTimeZone(name)
    return zoneinfo.ZoneInfo(name)


def zone_name(name: str) -> str:
    """A time zone's name, checked (a pydantic validator's body)."""
    zone(name)
    return name
