"""What a stored call becomes (the import of a batch, straight through the service layer on a real
database): posts, users and signups, normalized numbers, failures that leave nothing behind."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from rollcall.activity import service as activity
from rollcall.activity.models import Post, Signup, User
from rollcall.callpower.source import CallPower
from rollcall.calls import deliveries
from rollcall.calls import service as calls
from rollcall.calls import service as operations
from rollcall.calls.models import Call, CallState
from rollcall.calls.queue import Importer
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.paging import PageRequest
from tests.helpers import (
    SEED_CALL,
    break_posts,
    call_state,
    count,
    import_all,
    map_seed_campaign,
    mend_posts,
    results_equal_recount,
    store,
    wait_for,
)


def test_busy_call_makes_an_incomplete_post(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    [call_id] = store(database, {**SEED_CALL, "status": "busy", "call_duration": 0})
    import_all(database, settings)
    with database.reading() as session:
        post = session.scalars(sa.select(Post)).one()
    assert post.status == "incomplete"
    assert post.details["status_details"] == "busy"
    assert call_state(database, call_id).post_id == post.id


@pytest.mark.parametrize("status", ["completed", "COMPLETED", "  Completed  "])
def test_completed_in_any_case_is_accepted(database: Database, settings: Settings, status: str) -> None:
    map_seed_campaign(database)
    store(database, {**SEED_CALL, "status": status})
    import_all(database, settings)
    with database.reading() as session:
        assert session.scalars(sa.select(Post.status)).all() == ["accepted"]


def test_national_number_is_normalized_to_e164(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    store(
        database, {**SEED_CALL, "mobile": "2224567891"}, {**SEED_CALL, "mobile": "(222) 456-7891", "call_duration": 5}
    )
    import_all(database, settings)
    with database.reading() as session:
        assert session.scalars(sa.select(User.mobile)).all() == ["+12224567891"]
        assert session.scalars(sa.select(Signup.quantity)).all() == [2]


def test_default_region_decides_national_numbers(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    with database.writing() as session:
        delivery = CallPower("GB").check({**SEED_CALL, "mobile": "020 7946 0958"}, raw="{}", content_type=None)
        deliveries.store_deliveries(session, [delivery], CallPower())
    import_all(database, settings)
    with database.reading() as session:
        assert session.scalars(sa.select(User.mobile)).all() == ["+442079460958"]


def test_post_keeps_the_call_time_beside_its_creation_time(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    store(database, {**SEED_CALL, "call_timestamp": "2017-11-07T13:54:10-05:00"})
    import_all(database, settings)
    with database.reading() as session:
        post = session.scalars(sa.select(Post)).one()
    assert post.call_timestamp == dt.datetime(2017, 11, 7, 18, 54, 10, tzinfo=dt.UTC)
    assert post.created_at > post.call_timestamp
    assert post.details["call_timestamp"] == "2017-11-07T18:54:10Z"


def test_failure_half_way_leaves_nothing_behind_and_is_retried(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    [call_id] = store(database, SEED_CALL)
    break_posts(database)

    import_all(database, settings)

    failed = call_state(database, call_id)
    assert failed.state == CallState.FAILED
    assert failed.attempts == 1
    assert "posts broken" in (failed.last_error or "")
    assert failed.next_attempt_at is not None and failed.next_attempt_at > failed.updated_at
    # The user and signup made before the failing step were rolled back with it.
    assert count(database, User) == 0 and count(database, Signup) == 0

    mend_posts(database)
    wait_for(lambda: (import_all(database, settings), call_state(database, call_id).state)[1] == CallState.IMPORTED)
    assert count(database, Post) == 1 and count(database, User) == 1


def test_a_bad_call_fails_alone_and_the_rest_of_its_batch_is_imported(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    records = ({**SEED_CALL, "mobile": f"+1555123{n:04d}", "call_duration": n} for n in range(300))
    calls_stored = store(database, *records)
    bad = calls_stored[137]
    break_posts(database, message="this call is bad", when=f"NEW.call_id = {bad}")

    assert Importer(database, settings, CallPower()).import_batch(300) == 300

    failed = call_state(database, bad)
    assert failed.state == CallState.FAILED and "this call is bad" in (failed.last_error or "")
    assert all(call_state(database, call_id).state == CallState.IMPORTED for call_id in calls_stored if call_id != bad)
    assert count(database, Post) == 299 and count(database, User) == 299  # the bad call's member is not made
    assert results_equal_recount(database)
    mend_posts(database)
    wait_for(lambda: (import_all(database, settings), call_state(database, bad).state)[1] == CallState.IMPORTED)
    assert count(database, Post) == 300 and results_equal_recount(database)


def test_second_action_cannot_take_a_mapped_callpower_campaign(database: Database) -> None:
    first = map_seed_campaign(database, 5)
    with database.writing() as session:
        other = activity.create_action(session, campaign_id=1, name="Other")
        other_id = other.id
    with (
        pytest.raises(operations.CallPowerCampaignTaken, match=f"already mapped to action {first}"),
        database.writing() as session,
    ):
        operations.map_campaign(session, other_id, 5)


def test_many_calls_of_one_member_count_on_one_signup(database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    store(database, *({**SEED_CALL, "call_duration": n} for n in range(30)))
    import_all(database, settings)
    with database.reading() as session:
        assert session.scalars(sa.select(Signup.quantity)).all() == [30]
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 30


def test_a_large_batch_of_deliveries_is_stored_whole(database: Database) -> None:
    """More rows than one statement may carry parameters for (SQLite 32,766; PostgreSQL 65,535)."""
    batch = [
        CallPower("US").check(
            {**SEED_CALL, "call_timestamp": f"2018-01-01T00:00:00.{n:06d}"}, raw="{}", content_type="application/json"
        )
        for n in range(5_000)
    ]
    with database.writing() as session:
        assert deliveries.store_deliveries(session, batch + batch[:10], CallPower()).new == 5_000
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 5_000


def test_a_members_calls_are_listed_by_mobile_whether_imported_or_waiting(
    database: Database, settings: Settings
) -> None:
    """Calls the importer has seen and calls still waiting come from different indexes; the
    list by mobile is one list, newest first, page after page, with any state filter."""
    map_seed_campaign(database)
    member, other = "+15551231234", "+15559876543"
    first = store(database, *({**SEED_CALL, "call_duration": n} for n in range(5)))
    store(database, *({**SEED_CALL, "mobile": other, "call_duration": n} for n in range(3)))
    import_all(database, settings)
    later = store(database, *({**SEED_CALL, "call_duration": n} for n in range(5, 9)))  # still waiting
    mine = first + later

    def listed(**filters: Any) -> list[int]:
        pages: list[list[int]] = []
        page = PageRequest(limit=3)
        with database.reading() as session:
            while True:
                result = calls.list_calls(session, page, mobiles=[member], **filters)
                pages.append([call.id for call in result.items])
                if result.next is None:
                    break
                page = PageRequest(limit=3, cursor=result.next)
            back = [pages[-1]]  # and back again, page by page
            while result.prev is not None:
                page = PageRequest(limit=3, cursor=result.prev)
                result = calls.list_calls(session, page, mobiles=[member], **filters)
                back.insert(0, [call.id for call in result.items])
        assert back == pages
        return [call_id for ids in pages for call_id in ids]

    assert listed() == sorted(mine, reverse=True)
    assert listed(states=[CallState.RECEIVED]) == sorted(later, reverse=True)
    assert listed(states=[CallState.IMPORTED]) == sorted(first, reverse=True)
    assert listed(states=[CallState.IMPORTED, CallState.RECEIVED]) == sorted(mine, reverse=True)


def test_whole_batches_are_sized_by_their_pace(database: Database, settings: Settings) -> None:
    """An importer starts with batches of 200 calls, then takes as many as fit in
    ROLLCALL_IMPORT_BATCH_SECONDS at the last batch's pace: at most twice the last, never more
    than ROLLCALL_IMPORT_BATCH_SIZE. A slice (`limit`) leaves the size alone."""
    map_seed_campaign(database)
    durations = itertools.count()  # (each call a different one: no two are the same call)

    def calls_handled(importer: Importer, waiting: int, *limits: int | None) -> list[int]:
        store(database, *({**SEED_CALL, "call_duration": next(durations)} for _ in range(waiting)))
        return [importer.import_batch(limit) for limit in limits]

    roomy = Importer(database, settings.model_copy(update={"import_batch_seconds": 600.0}), CallPower())
    assert calls_handled(roomy, 1000, None, 16, None, None) == [200, 16, 400, 384]
    capped = Importer(
        database, settings.model_copy(update={"import_batch_seconds": 600.0, "import_batch_size": 300}), CallPower()
    )
    assert calls_handled(capped, 700, None, None, None) == [200, 300, 200]
    hurried = Importer(database, settings.model_copy(update={"import_batch_seconds": 1e-6}), CallPower())
    assert calls_handled(hurried, 240, None, None, None, None) == [200, 16, 16, 8]
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 1940
