"""The call record CallPower sends: its validation, normalization and de-duplication key.

This is the only place a call record is validated. The HTTP intake, `rollcall calls import` and
the tests all go through `parse_call`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from rollcall.db import BIGINT_MAX, INTEGER_MAX
from rollcall.errors import InvalidInput
from rollcall.fields import TEXT_LENGTH, is_missing
from rollcall.fields import required as required_field
from rollcall.phones import InvalidMobile, e164
from rollcall.times import iso_utc, parse_timestamp

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
# What people read for each field (the console's forms and pages); the API keeps the names.
FIELD_LABELS = {
    "mobile": "Caller's number",
    "callpower_campaign_id": "CallPower campaign (id)",
    "status": "Call outcome",
    "call_timestamp": "Call made at",
    "call_duration": "Talk time (seconds)",
    "campaign_target_title": "Target's title",
    "callpower_campaign_name": "CallPower campaign name",
    "number_dialed_into": "Number the caller dialed",
    "campaign_target_name": "Target's name",
    "campaign_target_district": "Target's district",
}
assert set(FIELD_LABELS) == set(CONTRACT_FIELDS)
# The fields a CallPower campaign may give defaults for: they describe the target and the
# campaign. Who called, which campaign, the outcome, the time and the duration are facts of
# the call that no default may invent.
DEFAULTABLE_FIELDS = (
    "campaign_target_title",
    "campaign_target_name",
    "campaign_target_district",
    "callpower_campaign_name",
    "number_dialed_into",
)

MAX_CAMPAIGN_ID = BIGINT_MAX  # stored as bigint
MAX_DURATION = INTEGER_MAX
_INTEGER_TEXT = re.compile(r"[+-]?0*[0-9]{1,20}")


class InvalidCall(InvalidInput):
    """A call record that breaks the contract; `fields` maps each field to its problems."""


class NumberOutOfRange(float):
    """A JSON number too large for a double (`1e400`): valid JSON, so the body decodes, and the
    field that holds it is refused by name (`deliveries.decode_json` makes these). It keeps the
    number as it was written, to be shown as it was sent (`as_text`)."""

    text: str

    def __new__(cls, text: str) -> NumberOutOfRange:
        number = super().__new__(cls, float(text))
        number.text = text
        return number


def _written(value: Any) -> Any:
    if isinstance(value, NumberOutOfRange):
        return orjson.Fragment(value.text)
    raise TypeError(f"{type(value).__name__} is not JSON")


def as_text(value: Any) -> str:
    """A received field's value as text, whatever its JSON type: text as it is, anything else as
    the JSON it was sent as (nothing, for null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_written, option=orjson.OPT_PASSTHROUGH_SUBCLASS).decode()


class _Problem(ValueError):
    """One field's problem: the end of a sentence that starts with the field's name."""


def _label(field: str) -> str:
    return field.replace("_", " ")


def normalize_mobile(value: str, region: str) -> str:
    """A caller's number in E.164 (`phones.e164`); the anonymous placeholders as they are."""
    value = value.strip()
    return value if value in ANONYMOUS_MOBILES else e164(value, region)


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
    return int(value)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call leg, validated and normalized: made by `parse_call`, or read back from what it
    stored (`from_document`)."""

    mobile: str
    callpower_campaign_id: int
    status: str
    call_timestamp: dt.datetime
    call_duration: int
    campaign_target_name: str | None
    campaign_target_title: str
    campaign_target_district: str | None
    callpower_campaign_name: str
    number_dialed_into: str

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> CallRecord:
        """A record as stored by `to_document`: validated and normalized at intake, so read back
        as it is (the importer does this for every call; validating again cost half its time)."""
        return cls(**{**document, "call_timestamp": parse_timestamp(document["call_timestamp"])})

    # -- what the rest of the product needs from a call --------------------------------------

    @property
    def is_anonymous(self) -> bool:
        return self.mobile in ANONYMOUS_MOBILES

    @property
    def is_completed(self) -> bool:
        return self.status.lower() == "completed"

    def to_document(self) -> dict[str, Any]:
        """The normalized record as JSON-ready data (what is stored and shown), in contract order."""
        # Written out: this runs for every call received, and a loop over the fields costs more.
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

    def dedup_key(self, secret: bytes) -> str:
        return dedup_key_of(self.to_document(), secret)

    def post_details(self) -> dict[str, Any]:
        """The post's `details`, with the reference's keys: the record but for who called and
        which campaign (the post says those), its status as `status_details`."""
        document = self.to_document()
        details = {"status_details": document.pop("status")}
        return details | {name: value for name, value in document.items() if name in _POST_DETAILS}


_POST_DETAILS = frozenset(CONTRACT_FIELDS) - {"mobile", "callpower_campaign_id", "status"}
# The record's fields in the order the contract lists them (and `CallRecord` holds them).
CONTRACT_ORDER = tuple(field.name for field in dataclasses.fields(CallRecord))


def dedup_key_of(document: dict[str, Any], secret: bytes) -> str:
    """Equal for two deliveries of the same call: the same field values after normalization
    (`document` is `CallRecord.to_document()`; the status counts in any case).

    The call's time, then a keyed digest of the whole record (HMAC-SHA256 with the database's
    dedup secret, `callpower.dedup`): a plain hash of a record gives its phone number away to
    anyone who tries the few billion possible numbers; a keyed one does not without the secret.
    The time comes first because calls arrive about in the order of their times, so new keys land
    next to each other at the end of the unique index instead of all over it. Measured with
    300,000 calls stored: a digest alone had every commit rewrite a page of the index per call,
    and the intake did 7,000-7,700 requests/s against 11,000 with the time first
    (docs/benchmarks.md)."""
    return f"{document['call_timestamp']}/{keyed_digest(document, secret)}"[:DEDUP_KEY_LENGTH]


def keyed_digest(document: dict[str, Any], secret: bytes) -> str:
    """HMAC-SHA256 of the normalized record (hex), the status in lower case."""
    canonical = orjson.dumps({**document, "status": document["status"].lower()}, option=orjson.OPT_SORT_KEYS)
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()


DEDUP_KEY_LENGTH = 64  # the column's width: a time of at most 27 characters, "/", 36 of the digest


# -- the rules, one function per kind of field -------------------------------------------------


def _text(value: Any, field: str, region: str) -> str:
    if not isinstance(value, str):
        raise _Problem("must be a string.")
    if "\x00" in value:
        raise _Problem("must not contain a NUL character.")
    if not value.isascii():
        try:
            value.encode("utf-8")  # a lone surrogate (JSON can spell one) cannot be stored
        except UnicodeEncodeError:
            raise _Problem("is not valid Unicode text.") from None
    return value


def _phone_text(value: Any, field: str, region: str) -> str:
    # The reference took any type here; numbers sent as JSON integers are common enough.
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _text(value, field, region)
    if field == "mobile":
        try:
            return str(normalize_mobile(text, region))
        except InvalidMobile:
            raise _Problem("is not a possible phone number.") from None
    return text


def _integer(value: Any, field: str, region: str) -> int:
    maximum = MAX_CAMPAIGN_ID if field == "callpower_campaign_id" else MAX_DURATION
    try:
        return parse_integer(value, minimum=1 if field == "callpower_campaign_id" else 0, maximum=maximum)
    except (TypeError, ValueError) as problem:
        raise _Problem(str(problem)) from None


def _timestamp(value: Any, field: str, region: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _Problem("must be an ISO-8601 date and time.")
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise _Problem("is not a valid ISO-8601 date and time.") from None


# Every field of the record, in the order problems are reported: (name, rule, required).
_RULES: tuple[tuple[str, Callable[[Any, str, str], Any], bool], ...] = (
    ("mobile", _phone_text, True),
    ("callpower_campaign_id", _integer, True),
    ("status", _text, True),
    ("call_timestamp", _timestamp, True),
    ("call_duration", _integer, True),
    ("campaign_target_name", _text, False),
    ("campaign_target_title", _text, True),
    ("campaign_target_district", _text, False),
    ("callpower_campaign_name", _text, True),
    ("number_dialed_into", _phone_text, True),
)
assert {name for name, _, _ in _RULES} == set(CONTRACT_FIELDS)
assert [name for name, _, _ in _RULES] == list(CONTRACT_ORDER)


def parse_call(payload: Any, *, region: str = "US") -> CallRecord:
    """Validate and normalize one call record, or raise `InvalidCall` naming every bad field.

    Strings are trimmed and an empty one counts as missing; unknown fields are ignored. Plain
    Python on purpose: this runs for every call received and every call imported, and it costs
    a fraction of a model library's per-field hooks.
    """
    if not isinstance(payload, Mapping):
        raise InvalidCall({"body": ["The call must be an object."]})
    values: list[Any] = []
    problems: dict[str, list[str]] = {}
    for name, rule, required in _RULES:
        value = payload.get(name)
        if isinstance(value, str):
            value = value.strip()
        if is_missing(value):
            if required:
                problems[name] = [required_field(name)]
            values.append(None)
            continue
        if isinstance(value, NumberOutOfRange):
            problems[name] = [f"The {_label(name)} is a number out of range."]
            continue
        try:
            values.append(rule(value, name, region))
        except _Problem as problem:
            problems[name] = [f"The {_label(name)} {problem}"]
    if problems:
        raise InvalidCall(problems)
    return CallRecord(*values)


def with_defaults(payload: Mapping[str, Any], defaults: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The payload with each missing defaultable field taken from `defaults` (a CallPower
    campaign's), and the names of the fields so completed, in contract order."""
    completed = dict(payload)
    defaulted = []
    for name in DEFAULTABLE_FIELDS:
        if name in defaults and is_missing(payload.get(name)):
            completed[name] = defaults[name]
            defaulted.append(name)
    return completed, defaulted


def lacks_defaultable(payload: Mapping[str, Any]) -> bool:
    """True when a default could complete this payload (one of the defaultable fields is missing)."""
    return any(is_missing(payload.get(name)) for name in DEFAULTABLE_FIELDS)


def check_default(name: str, value: Any) -> str:
    """A default for `name`, trimmed, or `InvalidCall` saying why it cannot be one."""
    if name not in DEFAULTABLE_FIELDS:
        allowed = ", ".join(DEFAULTABLE_FIELDS)
        if name in CONTRACT_FIELDS:
            message = f"The {_label(name)} field cannot have a default; only {allowed} can."
        else:
            message = f"{name} is not a field of a call record; defaults may be given for {allowed}."
        raise InvalidCall({name: [message]})
    if not isinstance(value, str) or not value.strip():
        raise InvalidCall({name: [f"The default {_label(name)} must be text that is not blank."]})
    try:
        _text(value, name, "")
    except _Problem as problem:
        raise InvalidCall({name: [f"The default {_label(name)} {problem}"]}) from None
    if len(value) > TEXT_LENGTH:
        raise InvalidCall({name: [f"The default {_label(name)} must be at most {TEXT_LENGTH} characters."]})
    return value.strip()


def mobile_of(payload: Any, region: str) -> str | None:
    """The normalized mobile of a record, even of one that failed validation elsewhere: what
    finds a member's rejected calls (`members`), by the same normalizer as a valid call's."""
    if not isinstance(payload, Mapping):
        return None
    try:
        return _phone_text(payload.get("mobile"), "mobile", region) if not is_missing(payload.get("mobile")) else None
    except _Problem:
        return None


def call_timestamp_of(payload: Any) -> dt.datetime | None:
    """The call's time in a record, even in one that failed validation elsewhere."""
    value = payload.get("call_timestamp") if isinstance(payload, Mapping) else None
    try:
        return _timestamp(value.strip(), "call_timestamp", "") if isinstance(value, str) else None
    except _Problem:
        return None


def campaign_id_of(payload: Any) -> int | None:
    """The CallPower campaign id of a record, even of one that failed validation elsewhere."""
    if not isinstance(payload, Mapping):
        return None
    value = payload.get("callpower_campaign_id")
    try:
        return parse_integer(value.strip() if isinstance(value, str) else value, minimum=1, maximum=MAX_CAMPAIGN_ID)
    except (TypeError, ValueError):
        return None
