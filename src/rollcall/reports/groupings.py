"""How a report's rows are grouped (a module of its own: the CLI's options name them without
loading the report's queries)."""

from __future__ import annotations

import enum


class Grouping(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    WEEKDAY_HOUR = "weekday_hour"
    TARGET = "target"
    STATE = "state"
    DISTRICT = "district"
    ACTION = "action"
    CAMPAIGN = "campaign"


TIME_GROUPINGS = (Grouping.DAY, Grouping.HOUR, Grouping.WEEKDAY_HOUR)
