"""Deliveries: what an authenticated body becomes (decoded, validated, completed by its campaign's
defaults) and how it is stored, one statement for a whole group commit.

JSON is the contract; forms are taken as the reference service took them. A body that cannot be
read, or breaks the contract, is a refused delivery and is stored all the same (as `rejected`), so
an operator can see and repair it. Decoding runs where calls are stored (the writer process under
`rollcall serve`), so the API processes only authenticate, forward and answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson
import python_multipart
import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.callpower import campaigns, statistics
from rollcall.callpower.dedup import dedup_secret
from rollcall.callpower.models import Call, CallDocument, CallState
from rollcall.callpower.record import (
    InvalidCall,
    NumberOutOfRange,
    call_timestamp_of,
    campaign_id_of,
    dedup_key_of,
    lacks_defaultable,
    mobile_of,
    parse_call,
    with_defaults,
)
from rollcall.db import table_of
from rollcall.dialect import announce_calls, driver_json, driver_time, insert_rows_ignoring_conflicts
from rollcall.events import EventType, record_events
from rollcall.times import utcnow


class Refusal(enum.StrEnum):
    """Why a delivery cannot become a call (each interface says it its own way: HTTP 400, 415, 422)."""

    UNREADABLE = "unreadable"  # not JSON, or not an object
    UNSUPPORTED = "unsupported"  # neither JSON nor a form
    INVALID = "invalid"  # a record that breaks the contract


class UnreadableBody(Exception):
    """The body cannot be decoded into a call record at all."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal


# -- what a body becomes ------------------------------------------------------------------------


def raw_text(body: bytes) -> str:
    """The body as text to keep: undecodable bytes and NUL (which PostgreSQL text refuses) replaced."""
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_payload(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as a mapping of fields: JSON (the contract) or a form (as the reference took)."""
    media = _media_type(content_type)
    # `curl -d '{...}'` labels JSON as a form; a form field cannot start with "{", so read it as JSON.
    looks_like_json = body.lstrip()[:1] == b"{"
    is_json = media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))
    if is_json or (media == "application/x-www-form-urlencoded" and looks_like_json):
        payload = decode_json(body)
        if not isinstance(payload, dict):
            raise UnreadableBody(Refusal.UNREADABLE, "The body must be a JSON object.")
        return payload
    if media == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise UnreadableBody(Refusal.UNREADABLE, "The form is not valid UTF-8.") from None
    if media == "multipart/form-data":
        return _multipart_fields(body, content_type or "")
    raise UnreadableBody(
        Refusal.UNSUPPORTED, "Send the call as application/json or as a form (application/x-www-form-urlencoded)."
    )


def decode_json(body: bytes) -> Any:
    """JSON as the grammar defines it. A number too large for a double (`1e400`) is valid JSON,
    which orjson refuses: such a body is read again with the standard library, the number kept
    as `NumberOutOfRange`, so the validator names the field (422) rather than the body (400)."""
    body = body.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if not str(error).startswith("number is infinity"):
            raise UnreadableBody(Refusal.UNREADABLE, "The body is not valid JSON.") from None
    try:
        payload = json.loads(body, parse_float=_double, parse_constant=_no_constant)
        # What orjson refuses besides such numbers must still be refused: lone surrogates.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise UnreadableBody(Refusal.UNREADABLE, "The body is not valid JSON.") from None
    return payload


def _double(text: str) -> float:
    value = float(text)
    return NumberOutOfRange(text) if math.isinf(value) else value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _multipart_fields(body: bytes, content_type: str) -> dict[str, Any]:
    """A multipart form's text fields (files are ignored)."""
    fields: dict[str, Any] = {}

    def on_field(field: Any) -> None:
        fields[field.field_name.decode("utf-8")] = (field.value or b"").decode("utf-8")

    try:
        headers = {"Content-Type": content_type.encode("latin-1")}
        python_multipart.parse_form(headers, io.BytesIO(body), on_field, lambda file: None)
    except (ValueError, UnicodeError):  # the parser's errors are ValueErrors
        raise UnreadableBody(Refusal.UNREADABLE, "The multipart form cannot be read.") from None
    return fields


@dataclass(frozen=True, slots=True)
class Delivery:
    """One authenticated delivery, ready to store: a valid record (as its stored document), or
    the errors that refused it."""

    raw: str
    content_type: str | None
    document: dict[str, Any] | None = None
    errors: dict[str, list[str]] | None = None
    callpower_campaign_id: int | None = None
    dedup_key: str | None = None  # made where it is stored (`keyed`): it needs the database's secret
    refusal: Refusal | None = None  # None: a valid call
    call_timestamp: dt.datetime | None = None  # the record's, kept as a datetime for the row and the counters
    defaulted: list[str] | None = None  # fields its campaign's defaults completed
    # (payload, region) of a delivery its campaign's defaults could complete, until they are
    # looked up where it is stored (`complete_with_defaults`); None once they were.
    completable: tuple[Mapping[str, Any], str] | None = None
    # A refused delivery's mobile, read from the body with the intake's normalizer when it can
    # be (a valid one's is in its document): how a member's rejected calls are found.
    mobile: str | None = None

    @classmethod
    def of_payload(
        cls,
        payload: Any,
        *,
        raw: str,
        content_type: str | None,
        region: str,
        defaults: Mapping[str, str] | None = None,
    ) -> Delivery:
        """Validate a decoded payload; an invalid one becomes a refused delivery, never an exception.

        With `defaults` (its CallPower campaign's), missing descriptive fields are completed
        first. Without, a payload that lacks one of them is marked `completable`.
        """
        defaulted: list[str] = []
        completable = None
        if isinstance(payload, dict):
            if defaults is not None:
                payload, defaulted = with_defaults(payload, defaults)
            elif lacks_defaultable(payload):
                completable = (payload, region)
        try:
            record = parse_call(payload, region=region)
        except InvalidCall as invalid:
            campaign = campaign_id_of(payload)
            return cls(
                raw,
                content_type,
                errors=invalid.fields,
                callpower_campaign_id=campaign,
                refusal=Refusal.INVALID,
                call_timestamp=call_timestamp_of(payload),
                completable=completable if campaign is not None else None,
                mobile=mobile_of(payload, region),
            )
        document = record.to_document()
        return cls(
            raw,
            content_type,
            document,
            callpower_campaign_id=record.callpower_campaign_id,
            call_timestamp=record.call_timestamp,
            defaulted=defaulted or None,
            completable=completable,
        )

    @classmethod
    def refused(
        cls, refusal: Refusal, errors: dict[str, list[str]], *, raw: str, content_type: str | None, region: str
    ) -> Delivery:
        """A body that could not be read at all; its mobile, if it names one (`mobile_in_text`)."""
        return cls(raw, content_type, errors=errors, refusal=refusal, mobile=mobile_in_text(raw, region))

    def values(self, now: Any, time: Callable[[dt.datetime | None], Any]) -> tuple[Any, ...]:
        """The row to store, in `_STORED_COLUMNS` order, as the driver takes it (`now` already is)."""
        document = self.document
        if document is None:
            errors = driver_json(self.errors)
            return (CallState.REJECTED.value, None, now, now, self.raw, self.content_type, "null", errors,
                    self.callpower_campaign_id, None, self.mobile, time(self.call_timestamp), 0, None,
                    "null")  # fmt: skip
        return (
            CallState.RECEIVED.value,
            self.dedup_key,
            now,
            now,
            self.raw,
            self.content_type,
            driver_json(document),
            "null",  # no errors: JSON null, as SQLAlchemy stores None in a JSON column
            self.callpower_campaign_id,
            document["callpower_campaign_name"],
            document["mobile"],
            time(self.call_timestamp),
            0,
            now,
            driver_json(self.defaulted),
        )


def delivery_of(body: bytes, content_type: str | None, region: str) -> Delivery:
    """The delivery a body makes: valid, unreadable, unsupported or invalid. Never raises for what
    a client sent."""
    raw = raw_text(body)
    try:
        payload = decode_payload(body, content_type)
    except UnreadableBody as problem:
        return Delivery.refused(
            problem.refusal, {"body": [str(problem)]}, raw=raw, content_type=content_type, region=region
        )
    return Delivery.of_payload(payload, raw=raw, content_type=content_type, region=region)


# A mobile field in a body that could not be read whole (cut-off JSON, a broken form):
# `"mobile": "+1 555 ..."`, `"mobile": 15551231234` or `mobile=%2B1555...`.
_MOBILE_FIELD = re.compile(r"""(?:"mobile"\s*:\s*(?:"([^"\\]{1,64})"|([0-9]{1,20}))|(?:^|&)mobile=([^&]{1,128}))""")


def mobile_in_text(raw: str, region: str) -> str | None:
    """The normalized mobile a body names in its `mobile` field, read from its text: for a body
    that could not be decoded, so that its member's erasure still finds it. Only that field,
    never a number elsewhere in the body."""
    found = _MOBILE_FIELD.search(raw)
    if found is None:
        return None
    quoted, bare, form = found.groups()
    value = quoted or bare or unquote_plus(form or "")
    return mobile_of({"mobile": value}, region)


# -- storing them -----------------------------------------------------------------------------

_calls = table_of(Call)
_STORED_COLUMNS = (
    "state",
    "dedup_key",
    "received_at",
    "updated_at",
    "raw",
    "content_type",
    "record",
    "errors",
    "callpower_campaign_id",
    "callpower_campaign_name",
    "mobile",
    "call_timestamp",
    "attempts",
    "next_attempt_at",
    "defaulted",
)


@dataclass(frozen=True)
class Stored:
    deliveries: list[Delivery]  # as stored (completed by their campaigns' defaults), in the order given
    new: int  # valid calls among them that were not stored before


def complete_with_defaults(session: Session, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Each delivery completed by its CallPower campaign's defaults, read in this transaction (so
    a default set a moment ago applies). Only deliveries that lack a descriptive field cost a
    query, one for all of them; calls that have every field never look."""
    waiting = {d.callpower_campaign_id for d in deliveries if d.completable is not None}
    if not waiting:
        return list(deliveries)
    found = campaigns.defaults_of(session, waiting)
    completed = []
    for delivery in deliveries:
        campaign = delivery.callpower_campaign_id
        defaults = found.get(campaign) if campaign is not None and delivery.completable is not None else None
        if defaults and delivery.completable is not None:
            payload, region = delivery.completable
            delivery = Delivery.of_payload(
                payload, raw=delivery.raw, content_type=delivery.content_type, region=region, defaults=defaults
            )
        completed.append(delivery)
    return completed


def keyed(session: Session, deliveries: Sequence[Delivery]) -> list[Delivery]:
    """The deliveries, each valid one with its de-duplication key (keyed with the database's secret)."""
    secret = dedup_secret(session)
    return [
        dataclasses.replace(d, dedup_key=dedup_key_of(d.document, secret)) if d.document is not None else d
        for d in deliveries
    ]


def store_deliveries(session: Session, deliveries: Sequence[Delivery]) -> Stored:
    """Store deliveries in one statement, completed by their campaigns' defaults; a call stored
    before is skipped."""
    if not deliveries:
        return Stored([], 0)
    deliveries = keyed(session, complete_with_defaults(session, deliveries))
    now = utcnow()
    stamp = driver_time(session, now)
    time = functools.partial(driver_time, session)
    inserted = insert_rows_ignoring_conflicts(
        session, _calls, _STORED_COLUMNS, [delivery.values(stamp, time) for delivery in deliveries], ("dedup_key", "id")
    )
    new_keys = {key for key, _ in inserted if key is not None}
    rejected = [call_id for key, call_id in inserted if key is None]
    stored = []  # refused deliveries are always new rows; a valid one only if its key went in
    for delivery in deliveries:
        if delivery.dedup_key is None:
            stored.append(delivery)
        elif delivery.dedup_key in new_keys:
            new_keys.discard(delivery.dedup_key)  # the same call twice in one batch went in once
            stored.append(delivery)
    campaigns.note_stored_calls(session, stored, now)
    statistics.count(
        session,
        [(d.callpower_campaign_id, now, CallState.RECEIVED if d.document else CallState.REJECTED, 1) for d in stored],
    )
    statistics.count_rejections(
        session, [(d.callpower_campaign_id, now, d.errors, 1) for d in stored if d.document is None]
    )
    new = sum(1 for delivery in stored if delivery.document is not None)
    if new:
        announce_calls(session, in_process=False)  # the writer storing them imports in its gaps
    if rejected:  # operators hear of each call refused (CallPower will not send it again)
        refused = session.scalars(sa.select(Call).where(Call.id.in_(rejected)).order_by(Call.id))
        record_events(session, [(EventType.CALL_REJECTED, call.id, CallDocument.of(call)) for call in refused])
    return Stored(deliveries, new)
