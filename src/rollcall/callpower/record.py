"""The call record CallPower sends: its validation, normalization and de-duplication key.

This is the only place a call record is validated. The HTTP intake, `rollcall calls import` and
the tests all go through `parse_call`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import orjson
import phonenumbers
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from rollcall.db import iso_utc
from rollcall.errors import InvalidInput

# Caller ids the telephony provider puts in place of a withheld number. Calls from them are
# accepted (CallPower already sent them) and then discarded: there is no member to credit.
# The reference service listed RESTRICTED as +7378742883, a typo of +7378742833.
ANONYMOUS_MOBILES = frozenset(
    {
        "+2562533",  # BLOCKED
        "+266696687",  # ANONYMOUS
        "+464",
        "+7378742833",  # RESTRICTED
        "+86282452253",  # UNAVAILABLE
        "+8656696",  # UNKNOWN
    }
)

REQUIRED_FIELDS = (
    "mobile",
    "callpower_campaign_id",
    "status",
    "call_timestamp",
    "call_duration",
    "campaign_target_title",
    "callpower_campaign_name",
    "number_dialed_into",
)
OPTIONAL_FIELDS = ("campaign_target_name", "campaign_target_district")
CONTRACT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS

MAX_CAMPAIGN_ID = 2**63 - 1
MAX_DURATION = 2**31 - 1
_INTEGER_TEXT = re.compile(r"[+-]?0*[0-9]{1,20}")


class InvalidCall(InvalidInput):
    """A call record that breaks the contract; `fields` maps each field to its problems."""


class InvalidMobile(ValueError):
    """Not even a possible phone number."""


def _label(field: str) -> str:
    return field.replace("_", " ")


def _problem(field: str, text: str) -> PydanticCustomError:
    # The text is final: braces in it are not placeholders.
    return PydanticCustomError("call_record", "{sentence}", {"sentence": f"The {_label(field)} {text}"})


@functools.lru_cache(maxsize=8192)
def normalize_mobile(value: str, region: str) -> str:
    """E.164 form of a possible phone number (anonymous placeholders are returned as they are).

    libphonenumber's "possible" test, not "valid": unassigned numbers such as +1555... must pass.
    """
    value = value.strip()
    if value in ANONYMOUS_MOBILES:
        return value
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidMobile(value) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidMobile(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_integer(value: Any, *, minimum: int, maximum: int) -> int:
    """An integer, or a string holding one; `ValueError` says which bound was broken."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 36.0 is the integer 36 (JSON Schema, and the reference, agree)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("must be an integer.")
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise TypeError("must be an integer.")
        value = int(value)
    if value < minimum:
        raise ValueError(f"must be at least {minimum}.")
    if value > maximum:
        raise ValueError(f"must be at most {maximum}.")
    return value


def parse_timestamp(value: str) -> dt.datetime:
    """ISO-8601 with `T` or a space, any fraction, any offset; no offset means UTC."""
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class CallRecord(BaseModel):
    """One call leg, validated and normalized."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    mobile: str
    callpower_campaign_id: int
    status: str
    call_timestamp: dt.datetime
    call_duration: int
    campaign_target_name: str | None = None
    campaign_target_title: str
    campaign_target_district: str | None = None
    callpower_campaign_name: str
    number_dialed_into: str

    @model_validator(mode="before")
    @classmethod
    def _blank_means_missing(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise PydanticCustomError("call_record", "The call must be an object.")
        present = {}
        for name in CONTRACT_FIELDS:
            value = data.get(name)
            if isinstance(value, str):
                value = value.strip()
            if value is not None and value != "":
                present[name] = value
        return present

    @field_validator(
        "status",
        "campaign_target_name",
        "campaign_target_title",
        "campaign_target_district",
        "callpower_campaign_name",
        mode="plain",
    )
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str):
            raise _problem(info.field_name, "must be a string.")
        if "\x00" in value:
            raise _problem(info.field_name, "must not contain a NUL character.")
        return value

    @field_validator("mobile", "number_dialed_into", mode="plain")
    @classmethod
    def _phone_text(cls, value: Any, info: ValidationInfo) -> str:
        # The reference took any type here; numbers sent as JSON integers are common enough.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        value = cls._text(value, info)
        if info.field_name == "mobile":
            region = (info.context or {}).get("region", "US")
            try:
                return normalize_mobile(value, region)
            except InvalidMobile:
                raise _problem("mobile", "is not a possible phone number.") from None
        return value

    @field_validator("callpower_campaign_id", "call_duration", mode="plain")
    @classmethod
    def _integer(cls, value: Any, info: ValidationInfo) -> int:
        if info.field_name == "callpower_campaign_id":
            bounds = {"minimum": 1, "maximum": MAX_CAMPAIGN_ID}
        else:
            bounds = {"minimum": 0, "maximum": MAX_DURATION}
        try:
            return parse_integer(value, **bounds)
        except (TypeError, ValueError) as problem:
            raise _problem(info.field_name, str(problem)) from None

    @field_validator("call_timestamp", mode="plain")
    @classmethod
    def _timestamp(cls, value: Any, info: ValidationInfo) -> dt.datetime:
        if not isinstance(value, str):
            raise _problem("call_timestamp", "must be an ISO-8601 date and time.")
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            raise _problem("call_timestamp", "is not a valid ISO-8601 date and time.") from None

    # -- what the rest of the product needs from a call --------------------------------------

    @property
    def is_anonymous(self) -> bool:
        return self.mobile in ANONYMOUS_MOBILES

    @property
    def is_completed(self) -> bool:
        return self.status.lower() == "completed"

    def to_document(self) -> dict[str, Any]:
        """The normalized record as JSON-ready data (what is stored and shown)."""
        return {
            "mobile": self.mobile,
            "callpower_campaign_id": self.callpower_campaign_id,
            "status": self.status,
            "call_timestamp": iso_utc(self.call_timestamp),
            "call_duration": self.call_duration,
            "campaign_target_name": self.campaign_target_name,
            "campaign_target_title": self.campaign_target_title,
            "campaign_target_district": self.campaign_target_district,
            "callpower_campaign_name": self.callpower_campaign_name,
            "number_dialed_into": self.number_dialed_into,
        }

    def dedup_key(self) -> str:
        """Equal for two deliveries of the same call: the same field values after normalization."""
        document = self.to_document()
        document["status"] = self.status.lower()
        return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def post_details(self) -> dict[str, Any]:
        """The post's `details`, with the reference's keys."""
        document = self.to_document()
        return {
            "status_details": self.status,
            "call_timestamp": document["call_timestamp"],
            "call_duration": self.call_duration,
            "campaign_target_name": self.campaign_target_name,
            "campaign_target_title": self.campaign_target_title,
            "campaign_target_district": self.campaign_target_district,
            "callpower_campaign_name": self.callpower_campaign_name,
            "number_dialed_into": self.number_dialed_into,
        }


def _message(error: Any) -> str:
    if error["type"] == "missing":
        return f"The {_label(str(error['loc'][0]))} field is required."
    return str(error["msg"])


def parse_call(payload: Any, *, region: str = "US") -> CallRecord:
    """Validate and normalize one call record, or raise `InvalidCall` naming every bad field."""
    try:
        return CallRecord.model_validate(payload, context={"region": region})
    except ValidationError as invalid:
        fields: dict[str, list[str]] = {}
        for error in invalid.errors(include_url=False, include_input=False):
            field = str(error["loc"][0]) if error["loc"] else "body"
            fields.setdefault(field, []).append(_message(error))
        raise InvalidCall(fields) from None


def campaign_id_of(payload: Any) -> int | None:
    """The CallPower campaign id of a record, even of one that failed validation elsewhere."""
    if not isinstance(payload, Mapping):
        return None
    value = payload.get("callpower_campaign_id")
    try:
        return parse_integer(value.strip() if isinstance(value, str) else value, minimum=1, maximum=MAX_CAMPAIGN_ID)
    except (TypeError, ValueError):
        return None
