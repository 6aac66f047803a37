"""The HTTP interface's house shapes: every error answer is `{"error": {...}}`, made here only."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
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

# prometheus_client decides at import whether to count through files (PROMETHEUS_MULTIPROC_DIR):
# `rollcall serve` sets that before anything imports this module.
from rollcall import metrics
from rollcall.errors import Conflict, InvalidInput, NotFound, RollcallError, Unauthorized
from rollcall.limits import TooManyRequests
from rollcall.logs import log_request, scrub

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


class BodyRefused(Exception):
    """The request body cannot be read: answered with `status` before it is read whole."""

    status = 400


class BodyTooLarge(BodyRefused):
    status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"The body is larger than {limit} bytes.")


class BodyTooSlow(BodyRefused):
    status = 408

    def __init__(self, timeout: float) -> None:
        super().__init__(f"The body did not arrive within {timeout:g} seconds.")


REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_NO_STORE = (b"cache-control", b"no-store")
# The console is served whole by this app: nothing from elsewhere, no inline script.
_CONSOLE_POLICY = (
    b"content-security-policy",
    b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
)
_HSTS = (b"strict-transport-security", b"max-age=31536000")


_JSON_HEADERS = [(b"content-type", JSON.encode())]
_INTERNAL_ERROR = orjson.dumps({"error": {"code": 500, "message": "Internal error."}})


def route_of(scope: Scope) -> str:
    """The route's path template (a bounded label), not the raw path."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    return str(scope.get("rollcall.route", "unmatched"))


class RequestLog:
    """One log line per request, with a request id; timing, metrics and security headers.

    The id is the caller's `X-Request-ID` when it is a plain token, else a new one; it is sent
    back and bound to every log line of the request. The query string is never logged (it may
    hold a mobile number). This runs for every call CallPower sends, so it works on the raw
    ASGI headers and keeps its metric children.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._observers: dict[tuple[str, str, int], Any] = {}
        self._intake_counters: dict[tuple[str, int], Any] = {}

    def _record(self, method: str, route: str, path: str, status: int, seconds: float, intake: bool) -> None:
        observe = self._observers.get((method, route, status))
        if observe is None:
            observe = metrics.REQUEST_SECONDS.labels(method, route, str(status)).observe
            self._observers[(method, route, status)] = observe
        observe(seconds)
        if intake:
            count = self._intake_counters.get((path, status))
            if count is None:
                count = self._intake_counters[(path, status)] = metrics.INTAKE_CALLS.labels(path, str(status)).inc
            count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        supplied = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if REQUEST_ID.fullmatch(value):
                    supplied = value
                break
        request_id = supplied or os.urandom(16).hex().encode()
        path = scope["path"]
        status = 500
        extra = [(b"x-request-id", request_id), *_SECURITY_HEADERS]
        if not path.startswith("/console/static"):
            extra.append(_NO_STORE)
        if path.startswith("/console"):
            extra.append(_CONSOLE_POLICY)
        if scope.get("scheme") == "https":
            extra.append(_HSTS)

        started_answer = False

        async def answer(message: Message) -> None:
            nonlocal status, started_answer
            if message["type"] == "http.response.start":
                status = message["status"]
                started_answer = True
                timing = (b"server-timing", b"app;dur=%.1f" % ((time.perf_counter() - started) * 1000))
                message["headers"] = [*message.get("headers", ()), timing, *extra]
            await send(message)

        # The caller's id is sent back as it came, and logged as the log may show it.
        request_text = request_id.decode() if supplied is None else scrub(supplied.decode())
        structlog.contextvars.bind_contextvars(request_id=request_text)
        try:
            await self.app(scope, receive, answer)
        except Exception:
            # Starlette answers 500 through the error handler (which logs the crash, once) and
            # raises the error again for the server to see; uvicorn would log it a second time
            # and drop the connection. Here it ends: answered, and logged.
            if not started_answer:
                log.exception("request.crashed", path=path)
                await answer({"type": "http.response.start", "status": 500, "headers": _JSON_HEADERS})
                await answer({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            seconds = time.perf_counter() - started
            route = route_of(scope)
            self._record(scope["method"], route, path, status, seconds, bool(scope.get("rollcall.intake")))
            log_request(
                request_text, method=scope["method"], path=path, route=route, status=status, ms=round(seconds * 1000, 2)
            )
            structlog.contextvars.clear_contextvars()


async def _within(deadline: float, timeout: float, receive: Receive) -> Message:
    """`await receive()`, or `BodyTooSlow` once the loop's clock passes `deadline` (the body's
    `timeout` after the request began).

    What `asyncio.timeout` does, in a third of its time: it runs for every request body.
    """
    loop = asyncio.get_running_loop()
    if loop.time() >= deadline:
        raise BodyTooSlow(timeout)
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = loop.call_at(deadline, expire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise BodyTooSlow(timeout) from None
        raise
    finally:
        timer.cancel()


class BodyLimit:
    """Refuse request bodies that are too large or too slow, before they are read whole.

    Pure ASGI, no buffering. The refusal happens when the route reads the body, not before, so
    a route can still answer 401 to a wrong key first: the body of an unauthenticated request is
    never looked at. The whole body must have arrived `timeout` seconds after the request's
    headers did (408 otherwise): one deadline, not one per chunk, so a client that sends a byte
    now and then cannot hold a connection open for ever.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout: float) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, timeout = self.limit, self.timeout
        deadline = asyncio.get_running_loop().time() + timeout
        declared = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        received = int(declared) if declared is not None and declared.isdigit() else 0
        complete = False

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body: waiting for a disconnect may take as long as it takes
                return await receive()
            if received > limit:
                raise BodyTooLarge(limit)
            message = await _within(deadline, timeout, receive)
            if message["type"] == "http.request":
                if declared is None:
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(limit)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send)


# A page for an error where the client is a person (the console): (request, status, message,
# problems by field) -> the page, or None where the house shape answers.
ErrorPage = Callable[[Request, int, str, dict[str, list[str]]], Response | None]


def install_error_handlers(app: FastAPI, page: ErrorPage | None = None) -> None:
    """Turn the domain's errors, and the framework's, into the house shape (or `page`'s)."""

    def answer(
        request: Request, status: int, message: str, fields: dict[str, list[str]] | None = None, **extra: Any
    ) -> Response:
        shown = page(request, status, message, fields or {}) if page else None
        return shown or error_response(status, message, fields, **extra)

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, error: Unauthorized) -> Response:
        return error_response(401, UNAUTHORIZED_MESSAGE, headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(TooManyRequests)
    async def too_many(request: Request, error: TooManyRequests) -> Response:
        return error_response(429, str(error), headers={"Retry-After": str(error.retry_after)})

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

    @app.exception_handler(BodyRefused)
    async def body_refused(request: Request, error: BodyRefused) -> Response:
        return error_response(error.status, str(error))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, error: RequestValidationError) -> Response:
        fields: dict[str, list[str]] = {}
        for problem in error.errors():
            location = [str(part) for part in problem.get("loc", ()) if part not in ("body", "query", "path")]
            fields.setdefault(".".join(location) or "request", []).append(str(problem.get("msg")))
        return answer(request, 422, VALIDATION_MESSAGE, fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "Error."
        if error.status_code == 404 and message == "Not Found":
            message = "Not found."
        return answer(request, error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(sa.exc.OperationalError)
    async def unavailable(request: Request, error: Exception) -> Response:
        log.error("database.unavailable", path=request.url.path, error=repr(error))
        return error_response(503, UNAVAILABLE_MESSAGE, headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        log.exception("request.crashed", path=request.url.path)
        return error_response(500, "Internal error.")
