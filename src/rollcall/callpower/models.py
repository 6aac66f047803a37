"""The CallPower contract's own tables and shapes: the CallPower campaigns seen (names, spans,
defaults) and the shapes of its defaults and of a repair's fields."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model, model_validator
from sqlalchemy.orm import Mapped, mapped_column

from rollcall.callpower.record import CONTRACT_FIELDS, DEFAULTABLE_FIELDS
from rollcall.db import Base, JSONDocument, UTCDateTime
from rollcall.documents import Document
from rollcall.fields import FILLED_TEXT, TEXT_LENGTH
from rollcall.times import utcnow


class CallPowerCampaign(Base):
    """Every CallPower campaign id seen, kept up to date as its calls are stored: its name, and
    the span of its calls' times. (How many calls it has, by state: `CampaignCount`.)"""

    __tablename__ = "callpower_campaigns"

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    first_call_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_call_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Values for the descriptive fields its calls lack (`record.DEFAULTABLE_FIELDS`), or null.
    defaults: Mapped[dict[str, str] | None] = mapped_column(JSONDocument)


class MappedAction(Document):
    id: int
    name: str
    campaign_id: int
    post_type: str


class CallPowerCampaignDocument(Document):
    callpower_campaign_id: int
    name: str | None = Field(description="The name CallPower sent last.")
    calls: dict[str, int] = Field(description="Stored calls in each state.")
    first_call_at: dt.datetime | None
    last_call_at: dt.datetime | None
    last_received_at: dt.datetime
    action: MappedAction | None = Field(description="The action its calls become posts on; null when unmapped.")
    defaults: dict[str, str] = Field(description="Values for the descriptive fields its calls lack.")
    rejected_because: dict[str, int] = Field(
        description="Its rejected calls' problems, each with how many of them have it (most common first)."
    )


# A default: text that is not blank (what `record.check_default` accepts, so the document says it).
_Default = Annotated[str, StringConstraints(max_length=TEXT_LENGTH, pattern=FILLED_TEXT)] | None


# The defaults given: each field is set, or with null loses its default; absent ones stay.
Defaults = create_model(
    "Defaults",
    __config__=ConfigDict(extra="forbid"),
    **{name: (_Default, None) for name in DEFAULTABLE_FIELDS},  # type: ignore[call-overload]
)


class DefaultsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    defaults: Defaults


# Fields of a call record laid over the body as received; null removes one.
Corrections = create_model(
    "Corrections",
    __config__=ConfigDict(extra="forbid"),
    **{name: (Any, None) for name in CONTRACT_FIELDS},  # type: ignore[call-overload]
)


class RepairRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: Corrections = Field(json_schema_extra={"minProperties": 1})

    @model_validator(mode="after")
    def _at_least_one_field(self) -> RepairRequest:
        if not self.fields.model_fields_set:
            raise ValueError("Give at least one field to correct.")
        return self
