"""Lists: keyset pagination, newest first, with opaque cursors (no OFFSET, no COUNT).

A list is ordered by a key (the id, or (created_at, id) where ids are not in time order),
newest first. `next` leads to older rows, `prev` to newer ones. A page is found by comparing
the key with the cursor's, so rows inserted meanwhile never shift a page: nothing is shown
twice and nothing is skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.db import BIGINT_MAX, INTEGER_MAX
from rollcall.errors import InvalidInput
from rollcall.fields import TEXT_LENGTH

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_OLDER, _NEWER = "a", "b"


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None
    prev: str | None


_INTEGER_RANGES = {sa.BigInteger: BIGINT_MAX + 1, sa.Integer: INTEGER_MAX + 1}


def any_of(column: Any, values: Sequence[Any] | None) -> list[Any]:
    """The filter "column is one of values", as a list of conditions (empty when not filtering).

    Integers the column cannot hold match nothing (PostgreSQL would refuse to compare them).
    """
    if values is None:
        return []
    for kind, bound in _INTEGER_RANGES.items():
        if isinstance(column.type, kind):
            values = [value for value in values if -bound <= value < bound]
            break
    if not values:
        return [sa.false()]
    return [column == values[0]] if len(values) == 1 else [column.in_(values)]


def count(session: Session, query: sa.Select[Any]) -> int:
    """How many rows a list's query has in all (for "the first 500 of N")."""
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())) or 0)


def _encode(direction: str, key: tuple[Any, ...]) -> str:
    values = [value.isoformat() if isinstance(value, dt.datetime) else value for value in key]
    return base64.urlsafe_b64encode(orjson.dumps([direction, values])).decode().rstrip("=")


def _decode(cursor: str, columns: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """A cursor's direction and key, each value checked whole against its column: an integer the
    column can hold, text it can hold, a time. Anything else (a forged or damaged cursor) is a
    422 naming `cursor`, never a query the database refuses."""
    invalid = InvalidInput({"cursor": ["The cursor is not valid."]})
    try:
        direction, values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if direction not in (_OLDER, _NEWER) or not isinstance(values, list) or len(values) != len(columns):
            raise invalid
        key = tuple(_key_value(column, value) for column, value in zip(columns, values, strict=True))
    except (ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
        raise invalid from None
    return direction, key


def _key_value(column: Any, value: Any) -> Any:
    """One value of a cursor's key, as its column holds it; ValueError if it cannot be one."""
    kind = column.type.python_type
    if kind is int:
        bound = next((bound for sql, bound in _INTEGER_RANGES.items() if isinstance(column.type, sql)), BIGINT_MAX + 1)
        if type(value) is not int or not -bound <= value < bound:
            raise ValueError("not an integer the column holds")
        return value
    if kind is dt.datetime:
        if not isinstance(value, str):
            raise ValueError("not a time")
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a time without its offset")
        return moment.astimezone(dt.UTC)  # OverflowError beyond the calendar
    if kind is str:
        length = getattr(column.type, "length", None) or TEXT_LENGTH
        if not isinstance(value, str) or "\x00" in value or len(value) > length:
            raise ValueError("not text the column holds")
        return value
    raise ValueError(f"no cursor over {kind}")


def _beyond(columns: Sequence[Any], key: tuple[Any, ...], older: bool) -> Any:
    if len(columns) == 1:
        return columns[0] < key[0] if older else columns[0] > key[0]
    left, right = sa.tuple_(*columns), sa.tuple_(*key)
    return left < right if older else left > right


def keyset_page(
    session: Session,
    query: sa.Select[Any] | Sequence[sa.Select[Any]],
    key: Sequence[Any],
    request: PageRequest,
    key_of: Callable[[Any], tuple[Any, ...]],
    *,
    oldest_first: bool = False,
) -> Page[Any]:
    """One page of `query`'s entities, newest first by the `key` columns (`oldest_first`: the
    other way, as a feed is read; `next` then leads to newer rows).

    `key_of(entity)` gives an entity's key values (for the cursors). `query` may be several
    queries with no entity in common (each served by its own index, where one query with OR
    would leave the choice to the planner): the page is their merge.
    """
    limit = max(1, request.limit)
    parts = [query] if isinstance(query, sa.Select) else list(query)
    direction = None
    if request.cursor:
        direction, position = _decode(request.cursor, key)
        parts = [part.where(_beyond(key, position, older=direction == _OLDER)) for part in parts]
    # Which way this page walks from the cursor, and whether that is the way `next` leads.
    newer = direction == _NEWER if direction is not None else oldest_first
    forward = newer == oldest_first
    order = [column.asc() if newer else column.desc() for column in key]
    rows = [row for part in parts for row in session.scalars(part.order_by(*order).limit(limit + 1))]
    if len(parts) > 1:
        rows = sorted(rows, key=key_of, reverse=not newer)[: limit + 1]
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()  # walked back from the cursor; shown in the list's own order
    if not rows:
        return Page([], None, None)
    has_next = more if forward else True
    has_prev = direction is not None if forward else more
    ahead, behind = (_NEWER, _OLDER) if oldest_first else (_OLDER, _NEWER)
    return Page(
        rows,
        next=_encode(ahead, key_of(rows[-1])) if has_next else None,
        prev=_encode(behind, key_of(rows[0])) if has_prev else None,
    )
