"""Fuzzing the intake: any JSON object with any headers gets a 4xx or a 200 that is stored, never
a 500, and an invalid record never becomes a post. Bounded examples, in the normal suite."""

from __future__ import annotations

import json
import string
from typing import Any

import httpx
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rollcall.activity.models import Post
from rollcall.callpower.models import Call
from rollcall.callpower.record import CONTRACT_FIELDS, InvalidCall, parse_call
from rollcall.db import Database
from tests.conftest import API_KEY, SEED_CALL, RunningApp
from tests.helpers import CONTRACT_PATH, LEGACY_PATH, map_seed_campaign

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
    @example(payload={**SEED_CALL, "mobile": [1]}, sent_headers=key, path=LEGACY_PATH)
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(payload: dict[str, Any], sent_headers: dict[str, str], path: str) -> None:
        before = count_calls(database)
        with httpx.Client(base_url=app.url, timeout=30) as client:
            body = json.dumps(payload).encode()
            answer = client.post(path, content=body, headers=sent_headers)
        assert answer.status_code < 500, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) <= {"success", "error"}
        authorized = API_KEY in (sent_headers.get("X-DS-CallPower-API-Key"), sent_headers.get("X-DS-Importer-API-Key"))
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
        case.call_and_validate(base_url=app.url, headers={"X-DS-CallPower-API-Key": API_KEY})

    check()
