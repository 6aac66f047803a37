"""The HTTP interface's house shapes: every error answer is `{"error": {...}}`, made here only."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollcall.db import DatabaseUnavailable
from rollcall.errors import Conflict, InvalidInput, NotFound, RollcallError, Unauthorized

log = structlog.get_logger("rollcall.http")

JSON = "application/json"


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type=JSON, headers=headers)


def error_body(code: int, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def error_response(
    code: int, message: str, fields: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None
) -> Response:
    return json_response(error_body(code, message, fields), status_code=code, headers=headers)


UNAUTHORIZED_MESSAGE = "Unauthorized."


class ErrorDetail(BaseModel):
    code: int
    message: str
    fields: dict[str, list[str]] | None = None


class ErrorAnswer(BaseModel):
    """The house shape of every error answer."""

    error: ErrorDetail


VALIDATION_MESSAGE = "Failed validation."
UNAVAILABLE_MESSAGE = "The service cannot store anything right now; try again shortly."


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The body is larger than {limit} bytes.")
        self.limit = limit


class BodyLimit:
    """Refuse request bodies over the limit before they are read whole (pure ASGI, no buffering).

    The refusal happens when the route reads the body, not before, so a route can still answer
    401 to a wrong key first: the body of an unauthenticated request is never looked at.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) <= limit:
            # The server never reads past an honest Content-Length, so nothing to count.
            await self.app(scope, receive, send)
            return
        received = int(declared) if declared is not None and declared.isdigit() else 0

        async def counting_receive() -> Message:
            nonlocal received
            if received > limit:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Turn the domain's errors, and the framework's, into the house shape."""

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, error: Unauthorized) -> Response:
        return error_response(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, error: InvalidInput) -> Response:
        return error_response(422, VALIDATION_MESSAGE, error.fields)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, error: NotFound) -> Response:
        return error_response(404, str(error))

    @app.exception_handler(Conflict)
    async def conflict(request: Request, error: Conflict) -> Response:
        return error_response(409, str(error))

    @app.exception_handler(RollcallError)
    async def other(request: Request, error: RollcallError) -> Response:
        return error_response(400, str(error))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge) -> Response:
        return error_response(413, str(error))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        fields: dict[str, list[str]] = {}
        for problem in error.errors():
            location = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "path")]
            fields.setdefault(".".join(location) or "request", []).append(str(problem.get("msg")))
        return error_response(422, VALIDATION_MESSAGE, fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "Error."
        if error.status_code == 404 and message == "Not Found":
            message = "Not found."
        return error_response(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(sa.exc.OperationalError)
    async def unavailable(request: Request, error: Exception) -> Response:
        log.error("database.unavailable", path=request.url.path, error=repr(error))
        return error_response(503, UNAVAILABLE_MESSAGE, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("request.crashed", path=request.url.path)
        return error_response(500, "Internal error.")
