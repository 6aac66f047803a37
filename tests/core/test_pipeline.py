"""The call pipeline through its seam, on a real database and no process: a source of a few lines
drives it whole (stored, refused, de-duplicated, imported, repaired, erased), which proves the
pipeline knows nothing of CallPower; and the kept counts equal a recount after a mixed history."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from rollcall.activity.models import Post
from rollcall.callpower.campaigns import set_campaign_defaults
from rollcall.callpower.source import CallPower
from rollcall.calls import repairs, results, service, statistics
from rollcall.calls.deliveries import store_deliveries
from rollcall.calls.models import Call, CallState
from rollcall.calls.queue import Importer
from rollcall.calls.source import CallFacts, Delivery, Refusal, Source
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.members import service as members
from tests.helpers import SEED_CALL, break_posts, import_all, map_seed_campaign, mend_posts, results_equal_recount


@dataclass(frozen=True)
class Toy:
    """A source of calls in a few lines: a body is `mobile,campaign,when,outcome`."""

    fields: tuple[str, ...] = ("mobile", "campaign", "when", "outcome")

    def delivery(self, body: bytes, content_type: str | None) -> Delivery:
        raw = body.decode()
        return self.check(self.read_back(raw, content_type), raw=raw, content_type=content_type)

    def check(
        self, payload: Any, *, raw: str, content_type: str | None, defaults: Mapping[str, str] | None = None
    ) -> Delivery:
        missing = {name: ["missing"] for name in self.fields if not payload.get(name)}
        campaign = int(payload["campaign"]) if str(payload.get("campaign", "")).isdigit() else None
        if missing:
            return Delivery(raw, content_type, errors=missing, refusal=Refusal.INVALID, campaign_id=campaign)
        when = dt.datetime.fromisoformat(payload["when"]).replace(tzinfo=dt.UTC)
        document = {name: payload[name] for name in self.fields}
        return Delivery(
            raw, content_type, document, campaign_id=campaign, mobile=payload["mobile"], call_timestamp=when
        )

    def read_back(self, raw: str, content_type: str | None) -> dict[str, Any] | None:
        return dict(zip(self.fields, raw.split(","), strict=False))

    def dedup_key(self, document: dict[str, Any], secret: bytes) -> str:
        return hmac.new(secret, repr(sorted(document.items())).encode(), hashlib.sha256).hexdigest()

    def defaults_of(self, session: Session, campaign_ids: Collection[int | None]) -> dict[int, dict[str, str]]:
        return {}

    def note_stored(self, session: Session, stored: Sequence[Delivery], received_at: dt.datetime) -> None:
        pass

    def facts(self, document: dict[str, Any]) -> CallFacts:
        return CallFacts(
            mobile=document["mobile"],
            campaign_id=int(document["campaign"]),
            call_timestamp=dt.datetime.fromisoformat(document["when"]).replace(tzinfo=dt.UTC),
            anonymous=False,
            completed=document["outcome"] == "answered",
            details={"outcome": document["outcome"]},
            status="completed" if document["outcome"] == "answered" else document["outcome"],
        )

    def reported(self, details: dict[str, Any]) -> tuple[str, int, tuple[str | None, str | None, str | None]]:
        outcome = details["outcome"]
        return ("completed" if outcome == "answered" else outcome, 0, (None, None, None))


def kept_equals_recount(database: Database, source: Source | None = None) -> bool:
    """The call counts and the campaign results, as kept, equal a count over the calls and posts."""
    with database.reading() as session:
        counts = statistics.maintained(session) == statistics.recount(session)
    return counts and results_equal_recount(database, source)


def test_a_source_of_a_few_lines_drives_the_whole_pipeline(database: Database, settings: Settings) -> None:
    toy = Toy()
    map_seed_campaign(database, 9)
    bodies = [
        b"+15550000001,9,2026-01-01T10:00:00,answered",
        b"+15550000002,9,2026-01-01T11:00:00,busy",
        b"+15550000001,9,2026-01-01T10:00:00,answered",  # the same call again
        b"+15550000003,9,,answered",  # refused: no time
    ]
    with database.writing() as session:
        stored = store_deliveries(session, [toy.delivery(body, "text/plain") for body in bodies], toy)
    assert stored.new == 2
    assert [d.refusal for d in stored.deliveries] == [None, None, None, Refusal.INVALID]
    Importer(database, settings, toy).import_batch()
    with database.reading() as session:
        posts = session.execute(sa.select(Post.status, Post.details).order_by(Post.id)).all()
        [rejected] = session.scalars(sa.select(Call.id).where(Call.state == CallState.REJECTED))
    assert [tuple(post) for post in posts] == [
        ("accepted", {"outcome": "answered"}),
        ("incomplete", {"outcome": "busy"}),
    ]

    with database.writing() as session:  # repaired through the same source
        repaired = repairs.repair_call(session, rejected, {"when": "2026-01-01T12:00:00"}, toy)
        assert repaired.state == CallState.RECEIVED
    Importer(database, settings, toy).import_batch()
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 3
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    assert member is not None
    assert results_equal_recount(database, toy)
    erased = members.erase(database, member, "test")
    assert (erased.posts, erased.calls) == (1, 1)
    assert kept_equals_recount(database, toy)


def test_the_same_call_twice_makes_one_post(database: Database, settings: Settings) -> None:
    source = CallPower()
    map_seed_campaign(database)
    for _ in range(2):
        with database.writing() as session:
            store_deliveries(session, [source.check(SEED_CALL, raw="{}", content_type=None)], source)
        import_all(database, settings)
    with database.reading() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 1


def test_kept_counts_equal_a_recount_after_a_mixed_history(database: Database, settings: Settings) -> None:
    """Stored, refused, unmapped then mapped, failed then retried, repaired, revalidated with a
    default, erased: after each step the counts kept as calls change equal a count over the calls."""
    source = CallPower()

    def call(n: int, **changes: Any) -> dict[str, Any]:
        return {**SEED_CALL, "mobile": f"+1555000{n:04d}", "call_timestamp": f"2026-01-01T10:00:{n:02d}", **changes}

    def store(*records: dict[str, Any]) -> None:
        with database.writing() as session:
            checked = [source.check(r, raw=json.dumps(r), content_type="application/json") for r in records]
            store_deliveries(session, checked, source)

    store(call(1), call(2), call(3, callpower_campaign_id=7), call(4, campaign_target_title=None))
    store(call(5, campaign_target_title=None), call(6, mobile="12"))  # refused twice, two ways
    store(call(7, status="busy"), call(8, status="no-answer", campaign_target_district="CA-12"))
    store(call(7, status="busy"))  # the same call again
    import_all(database, settings)  # campaign 1 has no action yet: all unmapped
    assert kept_equals_recount(database)
    map_seed_campaign(database, 1)
    break_posts(database)
    import_all(database, settings)  # released, then failed
    assert kept_equals_recount(database)
    mend_posts(database)
    with database.writing() as session:
        assert service.retry_calls(session, CallState.FAILED) == 4
    import_all(database, settings)
    assert kept_equals_recount(database)
    with database.reading() as session:
        rejected = list(session.scalars(sa.select(Call.id).where(Call.state == CallState.REJECTED).order_by(Call.id)))
    with database.writing() as session:
        repairs.repair_call(session, rejected[0], {"campaign_target_title": "Mayor"}, source)
    with database.writing() as session:
        set_campaign_defaults(session, 1, {"campaign_target_title": "Custom target"})
    done = repairs.revalidate_calls(database, 1, source)
    assert (done.revalidated, done.still_rejected) == (1, 1)  # the one with a mobile that is no number stays
    import_all(database, settings)
    assert kept_equals_recount(database)
    with database.reading() as session:
        member = session.scalar(sa.select(Call.user_id).where(Call.mobile == "+15550000001"))
    members.erase(database, str(member), "test")
    assert kept_equals_recount(database)
    with database.writing() as session:
        assert statistics.rebuild(session).corrected == 0
        assert results.rebuild(session, source) == 0
