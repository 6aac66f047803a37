"""The intake: `POST /api/partners/callpower/call` (the contract) and `/api/v1/callpower/call`
(the path stock CallPower sends to).

The route is lean on purpose: it checks the key its path defines before anything of the body is
read, reads the raw body, hands it to the writer (which decodes, validates and stores it: the
writer process under `rollcall serve`), and answers with a prepared body once the call is on
disk, or with the refusal the writer names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, FastAPI, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from rollcall.callpower.record import (
    CONTRACT_FIELDS,
    MAX_CAMPAIGN_ID,
    MAX_DURATION,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
)
from rollcall.calls.source import Refusal
from rollcall.config import Settings
from rollcall.credentials import matches
from rollcall.fields import FILLED_TEXT, STORABLE_TEXT
from rollcall.http import (
    UNAUTHORIZED_MESSAGE,
    UNAVAILABLE_MESSAGE,
    VALIDATION_MESSAGE,
    BodyRefused,
    error_body,
)
from rollcall.limits import TooManyRequests
from rollcall.services import Services, services_of

log = structlog.get_logger("rollcall.intake")

CONTRACT_PATH = "/api/partners/callpower/call"
LEGACY_PATH = "/api/v1/callpower/call"
KEY_HEADER = "X-DS-CallPower-API-Key"
LEGACY_KEY_HEADER = "X-DS-Importer-API-Key"

router = APIRouter(tags=["CallPower intake"])


@dataclass(frozen=True, slots=True)
class Answer:
    """What the intake answers: a status, a JSON body, and any extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def error(cls, status: int, message: str, fields: dict[str, list[str]] | None = None, **headers: str) -> Answer:
        extra = tuple((name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items())
        return cls(status, orjson.dumps(error_body(status, message, fields)), extra)

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(self.body)), *self.headers]


STORED = Answer(200, orjson.dumps({"success": {"code": 200, "message": "Received CallPower payload."}}))
UNAUTHORIZED = Answer.error(401, UNAUTHORIZED_MESSAGE)


# Each path reads exactly the key header it defines, once: one request is one guess.
_KEY_HEADER_OF = {CONTRACT_PATH: KEY_HEADER.lower().encode(), LEGACY_PATH: LEGACY_KEY_HEADER.lower().encode()}


def _valid_key(headers: list[tuple[bytes, bytes]], path: str, keys: tuple[str, ...]) -> str | None:
    """The key the path's key header carries, if it is one of `keys`; None when the header is
    missing, wrong, or given more than once. One pass over the raw headers."""
    wanted = _KEY_HEADER_OF.get(path)
    presented = None
    for name, value in headers:
        if name == wanted:
            if presented is not None:
                return None
            presented = value.decode("latin-1")
    return presented if presented is not None and matches(presented, keys) else None


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str | None:
    for name, value in headers:
        if name == wanted:
            return value.decode("latin-1")
    return None


async def take_call(services: Services, scope: Scope, read_body: Callable[[], Awaitable[bytes]]) -> Answer:
    """The whole intake: key, body, validation, storage, answer. Served straight from ASGI
    (`IntakeFastPath`) and, for anyone mounting the API without it, by the routes below."""
    headers = scope["headers"]
    key = _valid_key(headers, scope["path"], services.callpower_keys)
    if key is None:
        return UNAUTHORIZED
    try:
        services.rate_limiter.take(key)
    except TooManyRequests as error:
        return Answer.error(429, str(error), retry_after=str(error.retry_after))
    body = await read_body()
    try:
        # Decoding, validation and storage happen in the writer (a process of its own under
        # `rollcall serve`); this process answers with what it says.
        refusal, errors = await services.writer.receive(body, _header(headers, b"content-type"))
    except Exception as error:
        log.error("intake.not_stored", error=repr(error))
        return Answer.error(503, UNAVAILABLE_MESSAGE, retry_after="5")
    if refusal is None:
        return STORED
    if refusal is Refusal.INVALID:
        return Answer.error(422, VALIDATION_MESSAGE, errors)
    return Answer.error(_STATUS[refusal], errors["body"][0] if errors else "The body cannot be read.")


# What a refused delivery is answered (each is kept as a rejected call all the same).
_STATUS = {Refusal.UNREADABLE: 400, Refusal.UNSUPPORTED: 415, Refusal.INVALID: 422}


async def read_body(receive: Receive) -> bytes:
    """The whole request body, straight from ASGI messages (raises ClientDisconnect)."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def receive_call(request: Request) -> Response:
    answer = await take_call(services_of(request), request.scope, request.body)
    headers = {name.decode(): value.decode() for name, value in answer.headers}
    return Response(answer.body, status_code=answer.status, headers=headers, media_type="application/json")


INTAKE_PATHS = frozenset({CONTRACT_PATH, LEGACY_PATH})


class IntakeFastPath:
    """Answer the intake's POSTs straight from ASGI, in front of the FastAPI app.

    The intake is the one hot path. FastAPI's middleware, routing, exception layers and
    Starlette's request and response objects cost more per request than validating and storing
    the call (measured: a bare FastAPI endpoint spends ~3x the CPU of the same endpoint on plain
    ASGI). The routes stay declared on the router below (that is what OpenAPI documents) and run
    the same `take_call`. Everything else goes to the FastAPI app.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in INTAKE_PATHS:
            scope["rollcall.intake"] = True
            scope["rollcall.route"] = scope["path"]
            try:
                answer = await take_call(self.services, scope, lambda: read_body(receive))
            except ClientDisconnect:
                return  # nobody is listening; nothing was stored
            except BodyRefused as error:
                answer = Answer.error(error.status, str(error))
            except Exception:
                log.exception("intake.crashed")
                answer = Answer.error(500, "Internal error.")
            await send({"type": "http.response.start", "status": answer.status, "headers": answer.raw_headers()})
            await send({"type": "http.response.body", "body": answer.body})
            return
        await self.app(scope, receive, send)


# -- the OpenAPI description of the intake ----------------------------------------------------

# The schema describes what is certainly accepted (so generated examples are accepted), except the
# mobile: no pattern can say which texts libphonenumber reads as a possible number, and a client
# generated from a stricter one would refuse numbers rollcall takes; so it is any text, and the
# intake names the mobile when it cannot read one. It also takes more than the schema says, as the
# descriptions do: timestamps with a space instead of `T`, integers sent as strings.
# Not blank: at least one character that is neither whitespace nor a control character.
_TEXT = {"type": "string", "pattern": FILLED_TEXT, "description": "Not blank; trimmed."}
_OPTIONAL_TEXT = {"anyOf": [{"type": "string", "pattern": STORABLE_TEXT}, {"type": "null"}]}


def _integer(minimum: int, maximum: int, text: str, description: str) -> dict[str, Any]:
    """An integer field: a JSON integer in bounds, or text that surely holds one."""
    return {
        "anyOf": [{"type": "integer", "minimum": minimum, "maximum": maximum}, {"type": "string", "pattern": text}],
        "description": f"{description}, or the same as a string.",
    }


_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "mobile": {
        "type": "string",
        "minLength": 1,
        "description": "The caller's number, in any format: E.164 (`+15551231234`), or national with spaces, "
        "dots, dashes or parentheses (`(555) 123-1234`, read in ROLLCALL_DEFAULT_REGION); any number "
        "libphonenumber deems possible is accepted, anything else is a 422 naming `mobile`. Anonymous "
        "placeholders are accepted and discarded.",
        "example": "+15551231234",
    },
    "callpower_campaign_id": _integer(
        1, MAX_CAMPAIGN_ID, r"^\s*\+?0*[1-9][0-9]{0,17}\s*$", "CallPower's campaign id (at least 1)"
    ),
    "status": {**_TEXT, "description": "completed (any case: an accepted post), busy, no-answer, failed, ..."},
    "call_timestamp": {
        "type": "string",
        "format": "date-time",
        "description": "ISO-8601, with `T` or a space, any fraction; no offset means UTC.",
        "example": "2017-11-07T18:54:10.829655",
    },
    "call_duration": _integer(0, MAX_DURATION, r"^\s*\+?[0-9]{1,9}\s*$", "Seconds (0 or more)"),
    "campaign_target_name": _OPTIONAL_TEXT,
    "campaign_target_title": _TEXT,
    "campaign_target_district": {**_OPTIONAL_TEXT, "example": "FL-7"},
    "callpower_campaign_name": _TEXT,
    "number_dialed_into": _TEXT,
}
assert set(_FIELD_SCHEMAS) == set(CONTRACT_FIELDS)
CALL_RECORD_SCHEMA = {
    "type": "object",
    "required": list(REQUIRED_FIELDS),
    "properties": _FIELD_SCHEMAS,
    "additionalProperties": True,
    "description": f"Optional: {', '.join(OPTIONAL_FIELDS)}. Unknown extra fields are kept in the stored raw body.",
}


def _error_schema(code: int, with_fields: bool = False) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer", "enum": [code]}, "message": {"type": "string"}},
    }
    if with_fields:
        error["required"].append("fields")
        error["properties"]["fields"] = {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    return {"type": "object", "required": ["error"], "properties": {"error": error}}


_DEFAULT_BODY_LIMIT = Settings.model_fields["max_body_bytes"].default


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


INTAKE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": CALL_RECORD_SCHEMA},
            "application/x-www-form-urlencoded": {"schema": CALL_RECORD_SCHEMA},
        },
    },
}
INTAKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _answer(
        "Stored (committed and synced to disk), or a repeat of a call already stored.",
        {
            "type": "object",
            "required": ["success"],
            "properties": {
                "success": {
                    "type": "object",
                    "properties": {"code": {"type": "integer", "enum": [200]}, "message": {"type": "string"}},
                }
            },
        },
    ),
    400: _answer("The body is not a JSON object or a readable form (kept as rejected).", _error_schema(400)),
    401: _answer("Missing or wrong key. Nothing is stored.", _error_schema(401)),
    408: _answer("The body did not arrive in time. Nothing is stored.", _error_schema(408)),
    413: _answer(
        f"The body is over the size limit (`ROLLCALL_MAX_BODY_BYTES`, {_DEFAULT_BODY_LIMIT:,} bytes by default). "
        "Nothing is stored.",
        _error_schema(413),
    ),
    415: _answer("Neither JSON nor a form (kept as rejected).", _error_schema(415)),
    422: _answer(
        "The record breaks the contract; every bad field is named (kept as rejected).", _error_schema(422, True)
    ),
    429: _answer("Over the per-key rate limit (when one is set); see Retry-After.", _error_schema(429)),
    503: _answer("The call could not be stored; send it again.", _error_schema(503)),
}

for _path, _name, _summary, _header_name in (
    (CONTRACT_PATH, "receive_call", "Receive one CallPower call", KEY_HEADER),
    (LEGACY_PATH, "receive_call_legacy", "Receive one CallPower call (stock CallPower's path)", LEGACY_KEY_HEADER),
):
    _key = {
        "name": _header_name,
        "in": "header",
        "required": True,
        "schema": {"type": "string"},
        "description": "The CallPower key; this path reads this header only, given once.",
    }
    router.add_api_route(
        _path,
        receive_call,
        methods=["POST"],
        name=_name,
        summary=_summary,
        operation_id=_name,
        openapi_extra={**INTAKE_OPENAPI, "parameters": [_key]},
        responses=INTAKE_RESPONSES,
        response_class=Response,
    )
