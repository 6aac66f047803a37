"""The importer: what a stored call becomes, and how it waits, fails, retries and gives up."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.activity.models import Post, User
from rollcall.callpower.record import ANONYMOUS_MOBILES
from rollcall.callpower.source import CallPower
from rollcall.calls.models import CallState
from rollcall.calls.queue import Importer
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import (
    CONTRACT_PATH,
    SEED_CALL,
    break_posts,
    call_state,
    calls_in,
    count,
    import_all,
    map_seed_campaign,
    mend_posts,
    store,
    wait_for,
)


@pytest.mark.parametrize("mobile", sorted(ANONYMOUS_MOBILES))
def test_anonymous_caller_is_discarded(client: httpx.Client, database: Database, mobile: str) -> None:
    map_seed_campaign(database)
    answer = client.post(CONTRACT_PATH, json={**SEED_CALL, "mobile": mobile})
    assert answer.status_code == 200
    wait_for(lambda: calls_in(database)[0].state == CallState.DISCARDED)
    assert count(database, User) == 0 and count(database, Post) == 0


def test_unmapped_call_waits_then_imports_when_mapped_from_the_cli(
    client: httpx.Client, database: Database, cli: Any
) -> None:
    answer = client.post(CONTRACT_PATH, json={**SEED_CALL, "callpower_campaign_id": 77})
    assert answer.status_code == 200
    wait_for(lambda: calls_in(database)[0].state == CallState.UNMAPPED)
    assert count(database, Post) == 0

    cli("campaigns", "add", "--title", "Defend Dreamers")
    cli("actions", "add", "--campaign-id", "1", "--name", "Call Congress")
    mapped = cli("actions", "map", "1", "--callpower-campaign-id", "77")
    assert "1 waiting call handed to the importer" in mapped.stdout

    # No further command: the running service's importer picks them up.
    wait_for(lambda: calls_in(database)[0].state == CallState.IMPORTED)
    with database.reading() as session:
        post = session.scalars(sa.select(Post)).one()
    assert post.action_id == 1


def test_failed_call_backs_off_then_dies_then_can_be_retried(database: Database, settings: Settings, cli: Any) -> None:
    map_seed_campaign(database)
    [call_id] = store(database, SEED_CALL)
    break_posts(database)
    importer = Importer(database, settings, CallPower())
    delays = []
    for attempt in range(1, settings.import_max_attempts + 1):
        wait_for(lambda: importer.import_batch() == 1, timeout=30)
        call = call_state(database, call_id)
        assert call.attempts == attempt
        if call.state == CallState.FAILED:
            delays.append((call.next_attempt_at - call.updated_at).total_seconds())
    assert call.state == CallState.DEAD
    assert delays == pytest.approx([0.05 * 2**n for n in range(settings.import_max_attempts - 1)], abs=0.01)
    assert importer.import_batch() == 0  # dead calls are left alone

    mend_posts(database)
    cli("calls", "retry", str(call_id))
    import_all(database, settings)
    assert call_state(database, call_id).state == CallState.IMPORTED


def test_imported_call_cannot_be_retried(database: Database, settings: Settings, cli: Any) -> None:
    map_seed_campaign(database)
    [call_id] = store(database, SEED_CALL)
    import_all(database, settings)
    result = cli("calls", "retry", str(call_id), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: Call {call_id} is imported; only failed, dead, unmapped calls can be retried."
    )
