"""The staff API's conventions, shared by every `/api/v3` route.

Bearer tokens (never the CallPower key), `filter[...]` query parameters where a comma means
"any of", unknown parameters refused, and answers wrapped as `{"data": ...}` with cursors.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from rollcall import metrics
from rollcall.credentials import matches
from rollcall.db import INTEGER_MAX
from rollcall.documents import Document
from rollcall.errors import InvalidInput, Unauthorized
from rollcall.http import ErrorAnswer
from rollcall.limits import TooManyRequests
from rollcall.members import audit
from rollcall.paging import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest
from rollcall.services import services_of
from rollcall.times import parse_timestamp

T = TypeVar("T")

# Ids of rows with integer keys fit PostgreSQL's `integer`; larger ones cannot exist.
MAX_ID = INTEGER_MAX


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="StaffToken",
    description="A staff token from ROLLCALL_ADMIN_TOKEN (or the generated one `rollcall keys show` prints).",
)


def client_address(request: Request) -> str:
    """Who is asking, by address: the peer, or what a proxy in ROLLCALL_TRUSTED_PROXIES says it
    forwarded (uvicorn reads X-Forwarded-For from those only)."""
    return request.client.host if request.client else "unknown"


def check_staff_token(request: Request, token: str | None) -> None:
    """A bearer token, compared in constant time: 401 if it is missing or wrong, 429 while the
    client's address has used up its wrong tries (`limits.TokenThrottle`, shared with the
    console's sign-in); wrong and throttled tries are counted."""
    services = services_of(request)
    address = client_address(request)
    try:
        services.token_throttle.check(address)
    except TooManyRequests:
        metrics.API_TOKEN_FAILURES.labels("throttled").inc()
        raise
    if not token:
        raise Unauthorized()
    if not matches(token, services.admin_tokens):
        services.token_throttle.failed(address)
        metrics.API_TOKEN_FAILURES.labels("wrong token").inc()
        raise Unauthorized()


def require_staff(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Every staff route: a valid bearer token (`check_staff_token`), then the per-token rate limit."""
    check_staff_token(request, credentials.credentials if credentials else None)
    assert credentials is not None
    services_of(request).rate_limiter.take(credentials.credentials)


def staff_actor(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """Who is asking, as the audit log names them: the token's fingerprint, never the token
    (`require_staff` has checked it)."""
    return audit.token_actor(credentials.credentials) if credentials else "unknown"


StaffActor = Annotated[str, Depends(staff_actor)]


def _query_aliases(dependant: Any) -> Iterable[str]:
    for field in dependant.query_params:
        yield field.alias
    for sub in dependant.dependencies:
        yield from _query_aliases(sub)


def reject_unknown_parameters(request: Request) -> None:
    """A parameter the route does not know is an error, not silently ignored (a mistyped filter
    would otherwise return everything)."""
    route = request.scope.get("route")
    known = set(_query_aliases(route.dependant)) if route is not None else set()
    unknown = sorted(name for name in request.query_params if name not in known)
    if unknown:
        raise InvalidInput(
            {name: [f"Unknown {'filter' if name.startswith('filter[') else 'parameter'} {name}."] for name in unknown}
        )


STAFF = [Depends(require_staff), Depends(reject_unknown_parameters)]


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page, newest first.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`meta.cursor.next` or `.prev` of a page.")] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


# -- filter values --------------------------------------------------------------------------

INTEGER_LIST = r"^[0-9]{1,18}(,[0-9]{1,18})*$"
TEXT_LIST = "^[^,\\u0000]+(,[^,\\u0000]+)*$"


def integers(name: str, value: str | None) -> list[int] | None:
    """`filter[x]=1,2` as [1, 2]; no filter as None. An id that cannot exist simply matches nothing."""
    if value is None:
        return None
    try:
        return [int(part) for part in value.split(",")]
    except ValueError:
        raise InvalidInput({name: [f"The {name} must be integers separated by commas."]}) from None


def texts(value: str | None) -> list[str] | None:
    """`filter[x]=a,b` as ["a", "b"] (blanks dropped); no filter as None."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def moment(name: str, value: str | None) -> dt.datetime | None:
    """An ISO-8601 time (no offset means UTC), as the intake reads `call_timestamp`."""
    if value is None:
        return None
    try:
        return parse_timestamp(value.strip())
    except (ValueError, OverflowError):
        raise InvalidInput({name: [f"The {name} is not a valid ISO-8601 date and time."]}) from None


# -- answers --------------------------------------------------------------------------------


class Cursor(BaseModel):
    next: str | None
    prev: str | None


class Meta(BaseModel):
    cursor: Cursor


class One(BaseModel, Generic[T]):
    data: T


class Listing(BaseModel, Generic[T]):
    data: list[T]
    meta: Meta


def one(document: Any) -> dict[str, Any]:
    """A single resource as `{"data": ...}` (a document, or plain data)."""
    return {"data": document}


def listing(
    page: Page[Any], shape: type[Document] | None = None, *, documents: list[Any] | None = None
) -> dict[str, Any]:
    """A page as `{"data": [...], "meta": {"cursor": ...}}`: each item read into `shape`, or
    `documents` made by the caller."""
    if documents is None:
        documents = [shape.model_validate(item) for item in page.items] if shape is not None else list(page.items)
    return {"data": documents, "meta": {"cursor": {"next": page.next, "prev": page.prev}}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI answers for these error codes, in the house shape (401 and 422 always)."""
    described = {
        401: "Missing or wrong staff token.",
        429: "Too many wrong staff tokens from this address, or over the per-token rate limit (when one is set); "
        "see Retry-After.",
        404: "No such id.",
        409: "The value is taken, or the row is not in a state that allows this.",
        422: "Invalid parameters or body; every bad field is named.",
    }
    return {code: {"model": ErrorAnswer, "description": described[code]} for code in sorted({401, 422, 429, *codes})}
