"""A delivery's body, decoded and validated: what the writer stores and what the answer says.

JSON is the contract; forms are taken as the reference service took them. Runs where the
calls are stored (the writer process under `rollcall serve`), so the API processes only
authenticate, forward and answer.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any
from urllib.parse import parse_qsl

import orjson
import python_multipart

from rollcall.callpower.record import NumberOutOfRange
from rollcall.callpower.service import Delivery, raw_text


class UnreadableBody(Exception):
    """The body cannot be decoded into a call record at all (400 or 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_payload(body: bytes, content_type: str | None) -> Any:
    """The body as a mapping of fields: JSON (the contract) or a form (as the reference took)."""
    media = _media_type(content_type)
    # `curl -d '{...}'` labels JSON as a form; a form field cannot start with "{", so read it as JSON.
    looks_like_json = body.lstrip()[:1] == b"{"
    is_json = media in ("", "application/json") or (media.startswith("application/") and media.endswith("+json"))
    if is_json or (media == "application/x-www-form-urlencoded" and looks_like_json):
        payload = decode_json(body)
        if not isinstance(payload, dict):
            raise UnreadableBody(400, "The body must be a JSON object.")
        return payload
    if media == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise UnreadableBody(400, "The form is not valid UTF-8.") from None
    if media == "multipart/form-data":
        return _multipart_fields(body, content_type or "")
    raise UnreadableBody(415, "Send the call as application/json or as a form (application/x-www-form-urlencoded).")


def decode_json(body: bytes) -> Any:
    """JSON as the grammar defines it. A number too large for a double (`1e400`) is valid JSON,
    which orjson refuses: such a body is read again with the standard library, the number kept
    as `NumberOutOfRange`, so the validator names the field (422) rather than the body (400)."""
    body = body.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if not str(error).startswith("number is infinity"):
            raise UnreadableBody(400, "The body is not valid JSON.") from None
    try:
        payload = json.loads(body, parse_float=_double, parse_constant=_no_constant)
        # What orjson refuses besides such numbers must still be refused: lone surrogates.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise UnreadableBody(400, "The body is not valid JSON.") from None
    return payload


def _double(text: str) -> float:
    value = float(text)
    return NumberOutOfRange(value) if math.isinf(value) else value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _multipart_fields(body: bytes, content_type: str) -> dict[str, str]:
    """A multipart form's text fields (files are ignored)."""
    fields: dict[str, str] = {}

    def on_field(field: Any) -> None:
        fields[field.field_name.decode("utf-8")] = (field.value or b"").decode("utf-8")

    try:
        headers = {"Content-Type": content_type.encode("latin-1")}
        python_multipart.parse_form(headers, io.BytesIO(body), on_field, lambda file: None)
    except (ValueError, UnicodeError):  # the parser's errors are ValueErrors
        raise UnreadableBody(400, "The multipart form cannot be read.") from None
    return fields


def delivery_of(body: bytes, content_type: str | None, region: str) -> Delivery:
    """The delivery a body makes: valid (200), unreadable (400, 415) or invalid (422). Never raises
    for what a client sent."""
    raw = raw_text(body)
    try:
        payload = decode_payload(body, content_type)
    except UnreadableBody as problem:
        return Delivery.rejected({"body": [str(problem)]}, raw=raw, content_type=content_type, status=problem.status)
    return Delivery.of_payload(payload, raw=raw, content_type=content_type, region=region)
