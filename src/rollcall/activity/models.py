"""Member activity: users, campaigns, their actions, signups and posts (the reference's columns)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Mapped, mapped_column

from rollcall.db import BIGINT_MAX, INTEGER_MAX, Base, JSONDocument, UTCDateTime
from rollcall.documents import Document
from rollcall.fields import FILLED_TEXT, STORABLE_TEXT, TEXT_LENGTH, WORD_LENGTH
from rollcall.times import utcnow, zone_name, zone_names

PHONE_CALL = "phone-call"
SOURCE = "importer-client"
SOURCE_DETAILS = "CallPower"
# What an action is unless said otherwise: the columns' defaults, `NewAction`'s and the CLI's.
ACTION_DEFAULTS = {"post_type": PHONE_CALL, "action_type": "make-call", "noun": "calls", "verb": "completed"}
USER_ID_LENGTH = 24  # lowercase hex characters: the shape of the reference's user ids
USER_ID = f"^[0-9a-f]{{{USER_ID_LENGTH}}}$"
TIMEZONE_LENGTH = 64


def new_user_id() -> str:
    """An opaque id of `USER_ID_LENGTH` lowercase hex characters."""
    return secrets.token_hex(USER_ID_LENGTH // 2)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    internal_title: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    cause: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    start_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Its results are shown in this zone (IANA name) unless asked otherwise.
    timezone: Mapped[str | None] = mapped_column(sa.String(TIMEZONE_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Action(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"), index=True)
    post_type: Mapped[str] = mapped_column(sa.String(WORD_LENGTH), default=ACTION_DEFAULTS["post_type"])
    action_type: Mapped[str] = mapped_column(sa.String(WORD_LENGTH), default=ACTION_DEFAULTS["action_type"])
    # The CallPower campaign whose calls become posts on this action; unique when set.
    callpower_campaign_id: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True)
    noun: Mapped[str] = mapped_column(sa.String(WORD_LENGTH), default=ACTION_DEFAULTS["noun"])
    verb: Mapped[str] = mapped_column(sa.String(WORD_LENGTH), default=ACTION_DEFAULTS["verb"])
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (sa.Index("ix_users_created_at_id", "created_at", "id"),)  # the list, newest first

    id: Mapped[str] = mapped_column(sa.String(USER_ID_LENGTH), primary_key=True, default=new_user_id)
    mobile: Mapped[str] = mapped_column(sa.String(32), unique=True)
    sms_status: Mapped[str] = mapped_column(sa.String(32))
    source: Mapped[str] = mapped_column(sa.String(WORD_LENGTH))
    source_detail: Mapped[str | None] = mapped_column(sa.String(WORD_LENGTH))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Signup(Base):
    __tablename__ = "signups"
    __table_args__ = (
        sa.UniqueConstraint("northstar_id", "campaign_id", name="uq_signups_user_campaign"),
        sa.Index("ix_signups_campaign_id_id", "campaign_id", "id"),
        sa.Index("ix_signups_northstar_id_id", "northstar_id", "id"),  # a member's, newest first
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    northstar_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"))
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    source: Mapped[str | None] = mapped_column(sa.String(WORD_LENGTH))
    source_details: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    details: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Post(Base):
    __tablename__ = "posts"
    __table_args__ = (
        sa.Index("ix_posts_campaign_id_id", "campaign_id", "id"),
        sa.Index("ix_posts_action_id_id", "action_id", "id"),
        sa.Index("ix_posts_northstar_id_id", "northstar_id", "id"),
        sa.Index("ix_posts_signup_id_id", "signup_id", "id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    signup_id: Mapped[int] = mapped_column(sa.ForeignKey("signups.id"))
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaigns.id"))
    northstar_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id"))
    action_id: Mapped[int] = mapped_column(sa.ForeignKey("actions.id"))
    # The stored call this post was made from: unique, so a call can never make two posts.
    call_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calls.id"), unique=True)
    type: Mapped[str] = mapped_column(sa.String(WORD_LENGTH))
    action: Mapped[str] = mapped_column(sa.String(TEXT_LENGTH))
    quantity: Mapped[int] = mapped_column(sa.Integer, default=1)
    status: Mapped[str] = mapped_column(sa.String(32))
    source: Mapped[str | None] = mapped_column(sa.String(WORD_LENGTH))
    source_details: Mapped[str | None] = mapped_column(sa.String(TEXT_LENGTH))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # When the member made the call (UTC), beside when the post was made.
    call_timestamp: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# -- shapes of the staff API ------------------------------------------------------------------


def _encodable(value: str) -> str:
    value.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return value


_Storable = AfterValidator(_encodable)


def _in_utc(moment: dt.datetime) -> dt.datetime:
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01 with an offset east of UTC, 9999-12-31 west of it
        raise ValueError("is out of range: in UTC it falls before year 1 or after year 9999") from None


# A point in time sent with any offset, kept in UTC (documents show times as given).
_Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]
_TimeZone = Annotated[
    str,
    StringConstraints(max_length=TIMEZONE_LENGTH),
    AfterValidator(zone_name),
    Field(
        description="An IANA time zone name: America/New_York, Europe/Paris, UTC.",
        examples=["America/New_York"],
        json_schema_extra={"enum": sorted(zone_names())},
    ),
]
_Title = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=TEXT_LENGTH, pattern=FILLED_TEXT), _Storable
]
_Word = Annotated[str, StringConstraints(strip_whitespace=True, max_length=WORD_LENGTH, pattern=FILLED_TEXT), _Storable]
_Text = Annotated[str, StringConstraints(max_length=TEXT_LENGTH, pattern=STORABLE_TEXT), _Storable]
_CallPowerCampaignId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
_Id = Annotated[int, Field(ge=1, le=INTEGER_MAX)]


class CampaignDocument(Document):
    id: int
    internal_title: str
    cause: str | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    timezone: str | None = Field(description="The IANA time zone its results are shown in, unless asked otherwise.")
    created_at: dt.datetime
    updated_at: dt.datetime


class NewCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    internal_title: _Title
    cause: _Text | None = None
    start_date: _Moment | None = None
    end_date: _Moment | None = None
    timezone: _TimeZone | None = None


class CampaignChanges(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    internal_title: _Title = None  # type: ignore[assignment]  # absent means unchanged; null is refused
    cause: _Text | None = None
    start_date: _Moment | None = None
    end_date: _Moment | None = None
    timezone: _TimeZone | None = None


class ActionDocument(Document):
    id: int
    name: str
    campaign_id: int
    post_type: str
    action_type: str
    callpower_campaign_id: int | None
    noun: str
    verb: str
    created_at: dt.datetime
    updated_at: dt.datetime


class NewAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign_id: _Id
    name: _Title
    post_type: _Word = ACTION_DEFAULTS["post_type"]
    action_type: _Word = ACTION_DEFAULTS["action_type"]
    noun: _Word = ACTION_DEFAULTS["noun"]
    verb: _Word = ACTION_DEFAULTS["verb"]
    callpower_campaign_id: _CallPowerCampaignId | None = None


class ActionChanges(BaseModel):
    """Only the fields sent change; `callpower_campaign_id: null` unmaps the action."""

    model_config = ConfigDict(extra="forbid")

    # Absent means unchanged; null is refused (except for the CallPower campaign).
    name: _Title = None  # type: ignore[assignment]
    post_type: _Word = None  # type: ignore[assignment]
    action_type: _Word = None  # type: ignore[assignment]
    noun: _Word = None  # type: ignore[assignment]
    verb: _Word = None  # type: ignore[assignment]
    callpower_campaign_id: _CallPowerCampaignId | None = None


class UserDocument(Document):
    id: str
    mobile: str
    sms_status: str
    source: str
    source_detail: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class PostDocument(Document):
    id: int
    signup_id: int
    northstar_id: str
    campaign_id: int
    action_id: int
    call_id: int | None
    type: str
    action: str
    quantity: int
    status: str
    source: str | None
    source_details: str | None
    details: dict[str, Any] | None
    call_timestamp: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SignupDocument(Document):
    id: int
    northstar_id: str
    campaign_id: int
    quantity: int
    source: str | None
    source_details: str | None
    details: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    posts: list[PostDocument] | None = Field(
        None, description="With `include=posts`: the signup's newest posts (a page of them)."
    )
    posts_next: str | None = Field(
        None, description="With `include=posts`: where the rest of its posts are, if it has more (a posts list)."
    )
