"""A CallPower body read: JSON (the contract), or a form as the reference service took it;
refused as unreadable or unsupported when it is neither; and the `mobile` field of a body too
broken to decode, read from its text.

Reading runs where calls are stored (the writer process under `rollcall serve`), so the API
processes only authenticate, forward and answer.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson
import python_multipart

from rollcall.callpower.record import NumberOutOfRange, mobile_of
from rollcall.calls.source import Refusal


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
