"""The intake over real HTTP: answers, storage, de-duplication, what stock CallPower sends."""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.activity.models import Post, Signup, User
from rollcall.db import Database
from tests.helpers import (
    API_KEY,
    CONTRACT_PATH,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    calls_in,
    count,
    map_seed_campaign,
    wait_for,
)

SUCCESS = {"success": {"code": 200, "message": "Received CallPower payload."}}
UNAUTHORIZED = {"error": {"code": 401, "message": "Unauthorized."}}


def test_seed_example_becomes_an_accepted_post(client: httpx.Client, database: Database) -> None:
    action_id = map_seed_campaign(database)

    answer = client.post(
        CONTRACT_PATH,
        json=SEED_CALL,
        headers={"Accept": "application/json", "Content-Type": "application/json; charset=utf-8"},
    )

    assert answer.status_code == 200
    assert answer.json() == SUCCESS
    assert answer.headers["content-type"] == "application/json"
    wait_for(lambda: count(database, Post) == 1)
    with database.reading() as session:
        user = session.scalars(sa.select(User)).one()
        signup = session.scalars(sa.select(Signup)).one()
        post = session.scalars(sa.select(Post)).one()
    assert user.mobile == "+15551231234"
    assert user.sms_status == "stop"
    assert (user.source, user.source_detail) == ("importer-client", "CallPower")
    assert len(user.id) == 24 and all(c in "0123456789abcdef" for c in user.id)
    assert (signup.northstar_id, signup.quantity) == (user.id, 1)
    assert (signup.source, signup.source_details) == ("importer-client", "CallPower")
    assert post.status == "accepted"
    assert (post.type, post.action, post.action_id, post.quantity) == ("phone-call", "Call Congress", action_id, 1)
    assert (post.source, post.source_details) == ("importer-client", "CallPower")
    assert post.details == {
        "status_details": "completed",
        "call_timestamp": "2017-11-07T18:54:10.829655Z",
        "call_duration": 36,
        "campaign_target_name": "Mickey Mouse",
        "campaign_target_title": "Representative",
        "campaign_target_district": "FL-7",
        "callpower_campaign_name": "DefendDreamers_Nov9_CongressCalls",
        "number_dialed_into": "+15554441234",
    }
    assert post.call_timestamp is not None and post.call_timestamp.isoformat() == "2017-11-07T18:54:10.829655+00:00"


def test_missing_fields_are_all_named_and_nothing_is_imported(client: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    call = {k: v for k, v in SEED_CALL.items() if k not in ("mobile", "call_duration")}

    answer = client.post(CONTRACT_PATH, json=call)

    assert answer.status_code == 422
    assert answer.json() == {
        "error": {
            "code": 422,
            "message": "Failed validation.",
            "fields": {
                "mobile": ["The mobile field is required."],
                "call_duration": ["The call duration field is required."],
            },
        }
    }
    [stored] = calls_in(database)
    assert stored.state == "rejected"
    assert stored.errors == answer.json()["error"]["fields"]
    assert count(database, Post) == 0 and count(database, User) == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-DS-CallPower-API-Key": "wrong"}, {"X-DS-Importer-API-Key": "wrong"}, {"X-DS-CallPower-API-Key": ""}],
    ids=["missing", "wrong", "wrong-legacy-header", "empty"],
)
@pytest.mark.parametrize("path", [CONTRACT_PATH, LEGACY_PATH])
def test_without_the_key_nothing_is_stored(app: RunningApp, database: Database, headers: dict, path: str) -> None:
    with app.client() as client:
        answer = client.post(path, json=SEED_CALL, headers=headers)
        garbage = client.post(path, content=b"{not json", headers=headers)

    assert answer.status_code == 401 and answer.json() == UNAUTHORIZED
    assert garbage.status_code == 401 and garbage.json() == UNAUTHORIZED
    assert calls_in(database) == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (CONTRACT_PATH, [("X-DS-Importer-API-Key", API_KEY)]),  # the other path's header
        (LEGACY_PATH, [("X-DS-CallPower-API-Key", API_KEY)]),
        (CONTRACT_PATH, [("X-DS-CallPower-API-Key", "guess-1"), ("X-DS-CallPower-API-Key", API_KEY)]),
        (LEGACY_PATH, [("X-DS-Importer-API-Key", API_KEY), ("X-DS-Importer-API-Key", API_KEY)]),
    ],
    ids=["contract-path-legacy-header", "legacy-path-contract-header", "two-guesses", "header-twice"],
)
def test_each_path_reads_its_own_key_header_once(
    app: RunningApp, database: Database, path: str, headers: list[tuple[str, str]]
) -> None:
    """One request is one guess: a path reads the key header it defines, and only when it is
    given once (a request carrying many keys cannot try them all)."""
    with app.client() as client:
        answer = client.post(path, json=SEED_CALL, headers=httpx.Headers(headers))
    assert answer.status_code == 401 and answer.json() == UNAUTHORIZED
    assert calls_in(database) == []


def test_either_of_several_configured_keys_opens_the_intake(app_factory: Any, database: Database) -> None:
    app = app_factory(
        callpower_api_keys=("old-callpower-key-0123456789abcdefghij", "new-callpower-key-0123456789abcdefghij")
    )
    with app.client() as client:
        old = client.post(
            CONTRACT_PATH, json=SEED_CALL, headers={"X-DS-CallPower-API-Key": "old-callpower-key-0123456789abcdefghij"}
        )
        new = client.post(
            LEGACY_PATH,
            json={**SEED_CALL, "call_duration": 1},
            headers={"X-DS-Importer-API-Key": "new-callpower-key-0123456789abcdefghij"},
        )
    assert (old.status_code, new.status_code) == (200, 200)
    assert len(calls_in(database)) == 2


def test_stock_callpower_request_is_accepted(app: RunningApp, database: Database) -> None:
    # Exactly what CallPower's CRM sync sends: legacy path, legacy header, T timestamp, int id,
    # null district, Accept header and nothing else (no User-Agent).
    map_seed_campaign(database, 4)
    body = {
        **SEED_CALL,
        "callpower_campaign_id": 4,
        "call_timestamp": "2017-11-07T18:54:10.829655",
        "campaign_target_district": None,
        "status": "no-answer",
        "call_duration": 0,
    }
    with httpx.Client(base_url=app.url, headers={}) as client:
        request = client.build_request(
            "POST", LEGACY_PATH, json=body, headers={"X-DS-Importer-API-Key": API_KEY, "Accept": "application/json"}
        )
        del request.headers["user-agent"]
        answer = client.send(request)

    assert answer.status_code == 200 and answer.json() == SUCCESS
    wait_for(lambda: count(database, Post) == 1)
    with database.reading() as session:
        post = session.scalars(sa.select(Post)).one()
    assert post.status == "incomplete"
    assert post.details["campaign_target_district"] is None
    assert post.details["status_details"] == "no-answer"


def test_stock_callpower_custom_target_without_title_is_rejected_and_kept(app: RunningApp, database: Database) -> None:
    body = {**SEED_CALL, "call_timestamp": "2017-11-07T18:54:10", "campaign_target_title": None}
    with app.client() as client:
        answer = client.post(
            LEGACY_PATH, json=body, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
        )

    assert answer.status_code == 422
    assert answer.json()["error"]["fields"] == {
        "campaign_target_title": ["The campaign target title field is required."]
    }
    [stored] = calls_in(database)
    assert stored.state == "rejected"
    assert stored.callpower_campaign_id == 1
    assert json.loads(stored.raw)["campaign_target_title"] is None


def test_same_call_twice_makes_one_post(client: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    first = client.post(CONTRACT_PATH, json=SEED_CALL)
    # The same call, written differently: T instead of space, strings for numbers, spaces, extras.
    again = {
        **SEED_CALL,
        "call_timestamp": "2017-11-07T18:54:10.829655+00:00",
        "callpower_campaign_id": "1",
        "call_duration": " 36 ",
        "status": " Completed",
        "campaign_target_name": "Mickey Mouse ",
        "extra": "ignored",
    }
    second = client.post(LEGACY_PATH, json=again)

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == SUCCESS
    wait_for(lambda: count(database, Post) == 1)
    assert len(calls_in(database)) == 1
    assert count(database, Signup) == 1


def test_same_call_sent_concurrently_makes_one_post(app: RunningApp, database: Database) -> None:
    map_seed_campaign(database)

    def send(_: int) -> int:
        with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
            return client.post(CONTRACT_PATH, json=SEED_CALL).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(48)))

    assert statuses == [200] * 48
    wait_for(lambda: count(database, Post) == 1)
    assert len(calls_in(database)) == 1


def test_legs_of_one_session_are_different_calls(client: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    legs = [
        SEED_CALL,
        {**SEED_CALL, "campaign_target_name": "Donald Duck", "campaign_target_district": "FL"},
        {**SEED_CALL, "call_timestamp": "2017-11-07 18:55:40.1"},
    ]
    for leg in legs:
        assert client.post(CONTRACT_PATH, json=leg).status_code == 200

    wait_for(lambda: count(database, Post) == 3)
    assert count(database, User) == 1
    with database.reading() as session:
        assert session.scalars(sa.select(Signup.quantity)).all() == [3]


def test_form_encoded_call_is_accepted(client: httpx.Client, database: Database) -> None:
    form = {key: str(value) for key, value in SEED_CALL.items()}
    answer = client.post(CONTRACT_PATH, data=form)
    assert answer.status_code == 200 and answer.json() == SUCCESS
    multipart = client.post(CONTRACT_PATH, data={**form, "call_duration": "37"}, files={"x": ("x.txt", b"ignored")})
    assert multipart.status_code == 200
    stored = calls_in(database)
    assert [c.record["call_duration"] for c in stored] == [36, 37]


def test_unknown_extra_fields_are_kept_in_the_raw_record(client: httpx.Client, database: Database) -> None:
    answer = client.post(CONTRACT_PATH, json={**SEED_CALL, "campaign_id": 99, "note": "ünïcødé ☎"})
    assert answer.status_code == 200
    [stored] = calls_in(database)
    assert json.loads(stored.raw)["note"] == "ünïcødé ☎"
    assert "note" not in stored.record


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"callpower_campaign_id": "four"}, "callpower_campaign_id", "The callpower campaign id must be an integer."),
        ({"callpower_campaign_id": 0}, "callpower_campaign_id", "The callpower campaign id must be at least 1."),
        ({"callpower_campaign_id": 4.5}, "callpower_campaign_id", "The callpower campaign id must be an integer."),
        ({"callpower_campaign_id": True}, "callpower_campaign_id", "The callpower campaign id must be an integer."),
        (
            {"callpower_campaign_id": 10**30},
            "callpower_campaign_id",
            f"The callpower campaign id must be at most {2**63 - 1}.",
        ),
        ({"call_duration": 36.5}, "call_duration", "The call duration must be an integer."),
        (
            {"callpower_campaign_id": str(2**63)},
            "callpower_campaign_id",
            f"The callpower campaign id must be at most {2**63 - 1}.",
        ),
        ({"call_duration": -1}, "call_duration", "The call duration must be at least 0."),
        ({"call_duration": 2**40}, "call_duration", f"The call duration must be at most {2**31 - 1}."),
        ({"call_duration": [36]}, "call_duration", "The call duration must be an integer."),
        (
            {"call_timestamp": "yesterday"},
            "call_timestamp",
            "The call timestamp is not a valid ISO-8601 date and time.",
        ),
        (
            {"call_timestamp": "2017-13-45 99:00"},
            "call_timestamp",
            "The call timestamp is not a valid ISO-8601 date and time.",
        ),
        ({"call_timestamp": 1510080850}, "call_timestamp", "The call timestamp must be an ISO-8601 date and time."),
        ({"status": {"a": 1}}, "status", "The status must be a string."),
        ({"status": "   "}, "status", "The status field is required."),
        ({"mobile": "123"}, "mobile", "The mobile is not a possible phone number."),
        ({"mobile": "call me"}, "mobile", "The mobile is not a possible phone number."),
        ({"mobile": ["+15551231234"]}, "mobile", "The mobile must be a string."),
        ({"campaign_target_name": 5}, "campaign_target_name", "The campaign target name must be a string."),
        (
            {"callpower_campaign_name": "a\u0000b"},
            "callpower_campaign_name",
            "The callpower campaign name must not contain a NUL character.",
        ),
    ],
)
def test_bad_field_is_a_clear_422(
    client: httpx.Client, database: Database, change: dict, field: str, message: str
) -> None:
    answer = client.post(CONTRACT_PATH, json={**SEED_CALL, **change})
    assert answer.status_code == 422
    assert answer.json() == {"error": {"code": 422, "message": "Failed validation.", "fields": {field: [message]}}}
    assert [c.state for c in calls_in(database)] == ["rejected"]


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("1e400", "call_duration", "The call duration is a number out of range."),
        ("-1e400", "callpower_campaign_id", "The callpower campaign id is a number out of range."),
        ("1E+999", "campaign_target_name", "The campaign target name is a number out of range."),
        ("123456789012345678901234567890", "callpower_campaign_id", None),
    ],
)
def test_a_json_number_beyond_a_double_is_a_422_naming_its_field(
    client: httpx.Client, database: Database, text: str, field: str, message: str | None
) -> None:
    # Valid JSON by the grammar (RFC 8259 sets no limit on numbers), so the body is readable.
    body = json.dumps({**SEED_CALL, field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', text)
    answer = client.post(CONTRACT_PATH, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    fields = answer.json()["error"]["fields"]
    assert list(fields) == [field]
    if message:
        assert fields[field] == [message]
    [stored] = calls_in(database)
    assert stored.state == "rejected" and stored.raw == body


def test_non_json_constants_and_lone_surrogates_beside_a_huge_number_are_still_400(
    client: httpx.Client, database: Database
) -> None:
    for body in ('{"call_duration": 1e400, "status": NaN}', '{"call_duration": 1e400, "status": "\\ud800"}'):
        answer = client.post(CONTRACT_PATH, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, body
        assert answer.json()["error"]["message"] == "The body is not valid JSON."
    assert [c.state for c in calls_in(database)] == ["rejected", "rejected"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "The body is not valid JSON."),
        (b"", "application/json", 400, "The body is not valid JSON."),
        (b"[1, 2]", "application/json", 400, "The body must be a JSON object."),
        (b'"text"', "application/json", 400, "The body must be a JSON object."),
        (b"\xff\xfe{}", "application/json", 400, "The body is not valid JSON."),
        (b"<call/>", "application/xml", 415, None),
    ],
)
def test_unreadable_body_is_a_clear_4xx_and_kept(
    client: httpx.Client, database: Database, body: bytes, content_type: str, status: int, message: str | None
) -> None:
    answer = client.post(CONTRACT_PATH, content=body, headers={"Content-Type": content_type})
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == status
    if message:
        assert error["message"] == message
    [stored] = calls_in(database)
    assert stored.state == "rejected"


def test_oversized_body_is_refused_and_not_stored(client: httpx.Client, database: Database) -> None:
    huge = {**SEED_CALL, "padding": "x" * (64 * 1024)}
    answer = client.post(CONTRACT_PATH, json=huge)
    assert answer.status_code == 413
    assert answer.json() == {"error": {"code": 413, "message": "The body is larger than 65536 bytes."}}

    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    streamed = client.post(CONTRACT_PATH, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert calls_in(database) == []


def test_unicode_names_are_stored_as_sent(client: httpx.Client, database: Database) -> None:
    map_seed_campaign(database)
    call = {**SEED_CALL, "campaign_target_name": "José Ñúñez 山田 🗳", "callpower_campaign_name": "Défendez"}
    assert client.post(CONTRACT_PATH, json=call).status_code == 200
    wait_for(lambda: count(database, Post) == 1)
    with database.reading() as session:
        post = session.scalars(sa.select(Post)).one()
    assert post.details["campaign_target_name"] == "José Ñúñez 山田 🗳"


def test_answers_are_json_whatever_accept_says(client: httpx.Client) -> None:
    answer = client.post(CONTRACT_PATH, json=SEED_CALL, headers={"Accept": "text/html"})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == SUCCESS


def test_json_sent_as_a_form_by_plain_curl_is_read_as_json(client: httpx.Client, database: Database) -> None:
    # `curl -d '{...}'` without -H 'Content-Type: application/json' labels the body as a form.
    answer = client.post(
        CONTRACT_PATH, content=json.dumps(SEED_CALL), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200
    [stored] = calls_in(database)
    assert stored.record is not None and stored.record["mobile"] == "+15551231234"


def test_calls_sent_one_after_another_are_imported_as_they_come(client: httpx.Client, database: Database) -> None:
    """CallPower's own pattern: one request at a time. The importer keeps up while they keep
    coming, rather than waiting for them to stop."""
    map_seed_campaign(database)
    for n in range(300):
        stamp = f"2019-03-01T10:{n // 60:02d}:{n % 60:02d}"
        assert client.post(LEGACY_PATH, json={**SEED_CALL, "call_timestamp": stamp}).status_code == 200
    # Still sending would look the same to the writer: it has had no quiet spell yet.
    assert count(database, Post) >= 250
    wait_for(lambda: count(database, Post) == 300)
