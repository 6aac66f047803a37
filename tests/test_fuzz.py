"""Fuzzing the intake: any JSON object with any headers gets a 4xx or a 200 that is stored, never
a 500, and an invalid record never becomes a post. Bounded examples, in the normal suite."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from rollcall.activity.models import Post
from rollcall.callpower.record import CONTRACT_FIELDS, InvalidCall, parse_call
from rollcall.calls.models import Call
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    CONTRACT_PATH,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    check_intake_answer,
    map_seed_campaign,
    sign_in_over_http,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Each contract field: a plausible value, a near miss, or anything at all.
field_values = {
    name: st.one_of(st.just(SEED_CALL.get(name)), st.just(str(SEED_CALL.get(name, ""))), st.just(""), json_values)
    for name in CONTRACT_FIELDS
}
payloads = st.builds(
    lambda fields, extras: {**extras, **fields},
    st.fixed_dictionaries({}, optional=field_values),
    st.dictionaries(st.text(max_size=12), json_values, max_size=3),
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + string.punctuation, max_size=40)
headers = st.fixed_dictionaries(
    {},
    optional={
        "X-DS-CallPower-API-Key": st.one_of(st.just(API_KEY), header_text),
        "X-DS-Importer-API-Key": st.one_of(st.just(API_KEY), header_text),
        "Content-Type": st.one_of(
            st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]), header_text
        ),
        "Accept": header_text,
        "X-Request-ID": header_text,
        "Authorization": header_text,
    },
)


def valid(payload: dict[str, Any]) -> bool:
    try:
        parse_call(payload)
    except InvalidCall:
        return False
    return True


def count_calls(database: Database) -> int:
    with database.reading() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Call)) or 0


def test_any_object_and_any_headers_get_a_clear_answer(app: RunningApp, database: Database) -> None:
    map_seed_campaign(database)
    seen: list[tuple[dict[str, Any], int]] = []

    key = {"X-DS-CallPower-API-Key": API_KEY}

    @given(payload=payloads, sent_headers=headers, path=st.sampled_from([CONTRACT_PATH, LEGACY_PATH]))
    @example(payload=SEED_CALL, sent_headers=key, path=CONTRACT_PATH)
    @example(payload={**SEED_CALL, "mobile": [1]}, sent_headers={"X-DS-Importer-API-Key": API_KEY}, path=LEGACY_PATH)
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(payload: dict[str, Any], sent_headers: dict[str, str], path: str) -> None:
        before = count_calls(database)
        with httpx.Client(base_url=app.url, timeout=30) as client:
            body = json.dumps(payload).encode()
            answer = client.post(path, content=body, headers=sent_headers)
        assert answer.status_code < 500, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) <= {"success", "error"}
        # Each path reads its own key header only.
        header = "X-DS-CallPower-API-Key" if path == CONTRACT_PATH else "X-DS-Importer-API-Key"
        authorized = sent_headers.get(header) == API_KEY
        if not authorized:
            assert answer.status_code == 401
            assert count_calls(database) == before  # unauthenticated bodies are never stored
        elif answer.status_code == 200:
            assert valid(payload)  # a 200 only for a record that passes the contract
        seen.append((payload, answer.status_code))

    check()
    assert any(status == 200 for _, status in seen)
    assert any(status == 422 for _, status in seen)
    # Only valid records became posts.
    with database.reading() as session:
        records = session.scalars(sa.select(Call.record).join(Post, Post.call_id == Call.id)).all()
        rejected = session.scalars(sa.select(Call.record).where(Call.state == "rejected")).all()
    assert all(valid(record) for record in records)
    assert all(record is None for record in rejected)


def test_schemathesis_on_the_intake_operation(app: RunningApp) -> None:
    schema = schemathesis.openapi.from_url(f"{app.url}/openapi.json")
    operation = next(result.ok() for result in schema.get_all_operations() if result.ok().path == CONTRACT_PATH)

    @given(case=operation.as_strategy())
    @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=app.url,
            headers={"X-DS-CallPower-API-Key": API_KEY},
            excluded_checks=[positive_data_acceptance],  # the mobile: see check_intake_answer
        )
        check_intake_answer(CONTRACT_PATH, response)

    check()


# -- no parameter of any route or page makes a 5xx -------------------------------------------------

EXTREMES = [
    "",
    " ",
    "0",
    "-1",
    "1.5",
    "1e400",
    str(2**31),
    str(2**63),
    str(2**64),
    str(-(2**63) - 1),
    "9" * 40,
    "NaN",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "0001-01-01",
    "evt_" + "9" * 30,
    "\x00",
    "%",
    ",",
    "true",
    "+15551231234",
]
_values = st.one_of(
    st.sampled_from(EXTREMES), st.text(max_size=20), st.integers(-(2**70), 2**70).map(str), st.floats().map(str)
)


def _forged(direction: str, key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([direction, key]).encode()).decode().rstrip("=")


# Cursors made by hand: right shape, values at every extreme (the server's come from `paging`).
_cursors = st.builds(
    _forged,
    st.sampled_from(["a", "b", "x"]),
    st.lists(
        st.one_of(
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
            st.text(max_size=8),
            st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2026-01-01T00:00:00"]),
        ),
        max_size=3,
    ),
)


def _strategy(name: str) -> st.SearchStrategy[str]:
    return st.one_of(_cursors, _values) if name == "cursor" else _values


def _routes(settings: Any) -> list[tuple[str, list[str], list[str]]]:
    """Every GET route of the staff API and the console: (path, path parameters, query parameters)."""
    from fastapi.routing import APIRoute

    from rollcall.app import create_api

    def query(dependant: Any) -> list[str]:
        names = [field.alias for field in dependant.query_params]
        return names + [name for sub in dependant.dependencies for name in query(sub)]

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, APIRoute]]:
        for route in routes:
            if isinstance(route, APIRoute):
                yield prefix + route.path, route
            elif hasattr(route, "original_router"):  # a router included whole (FastAPI 0.16x)
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    return [
        (path, [p.alias for p in route.dependant.path_params], query(route.dependant))
        for path, route in walk(create_api(settings).routes, "")
        if "GET" in route.methods and path.startswith(("/api/v3", "/console"))
    ]


def _no_5xx(client: httpx.Client, path: str, path_parameters: list[str], query_parameters: list[str]) -> None:
    @given(
        in_path=st.fixed_dictionaries({name: _values for name in path_parameters}),
        in_query=st.fixed_dictionaries({}, optional={name: _strategy(name) for name in query_parameters}),
    )
    @settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(in_path: dict[str, str], in_query: dict[str, str]) -> None:
        url = path.format(**{name: quote(value, safe="") or "x" for name, value in in_path.items()})
        answer = client.get(url, params=in_query)
        assert answer.status_code < 500, (url, in_query, answer.status_code, answer.text[:300])

    check()


def test_no_parameter_of_any_route_or_page_makes_a_5xx(app: RunningApp, database: Database) -> None:
    """Every GET route of the staff API and every console page, each parameter (cursors made by
    hand, dates at the ends of the calendar, numbers beyond every column) at its extremes: a 2xx,
    3xx or 4xx, never a 5xx. Bounded examples per route."""
    map_seed_campaign(database)
    staff = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    routes = _routes(app.settings)
    assert len(routes) >= 30
    failures: list[str] = []
    with httpx.Client(base_url=app.url, timeout=30, headers=staff) as client:
        client.post(LEGACY_PATH, json=SEED_CALL, headers={"X-DS-Importer-API-Key": API_KEY})
        sign_in_over_http(client)
        for path, path_parameters, query_parameters in routes:
            try:
                _no_5xx(client, path, path_parameters, query_parameters)
            except AssertionError as failure:
                failures.append(str(failure))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "key", [[2**63], [2**80], [1.5], [-(2**70)], ["9999-12-31T23:59:59-05:00"], [True], [None]], ids=str
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v3/posts",
        "/api/v3/signups",
        "/api/v3/callpower/calls",
        "/api/v3/events",
        "/api/v3/users",
        "/api/v3/campaigns",
    ],
)
def test_a_forged_cursor_is_a_422_naming_the_cursor(app: RunningApp, path: str, key: list[Any]) -> None:
    """Found by the test above: a cursor holding an integer too large for its column, or a float,
    was a 500 on every list."""
    if path == "/api/v3/users":
        key = [*key, "a" * 24]
    answer = httpx.get(
        f"{app.url}{path}", params={"cursor": _forged("a", key)}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 422, answer.text
    assert list(answer.json()["error"]["fields"]) == ["cursor"]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_date_beyond_the_calendar_in_utc_is_a_422(app: RunningApp, moment: str) -> None:
    """Found by the test above: a campaign's date near either end of the calendar, with an
    offset that takes it past the end in UTC, was a 500."""
    staff = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    answer = httpx.post(
        f"{app.url}/api/v3/campaigns", json={"internal_title": "x", "start_date": moment}, headers=staff
    )
    assert answer.status_code == 422 and "start_date" in answer.json()["error"]["fields"]


def test_a_stored_body_shows_its_values_as_text_whatever_their_type(app: RunningApp, database: Database) -> None:
    """Found by the test above: the page (and repair form) of a call whose body had
    `"call_duration": 1e400` was a 500; it shows the value as it was sent."""
    body = json.dumps({**SEED_CALL, "campaign_target_title": None})[:-1] + ', "call_duration": 1e400}'
    with httpx.Client(base_url=app.url, timeout=30) as client:
        sent = client.post(
            LEGACY_PATH, content=body, headers={"X-DS-Importer-API-Key": API_KEY, "Content-Type": "application/json"}
        )
        assert sent.status_code == 422
        sign_in_over_http(client)
        page = client.get("/console/calls/1")
    assert page.status_code == 200
    assert 'name="call_duration" value="1e400"' in page.text
