"""A large database for the read benchmarks: campaigns, actions, users, signups, calls and posts.

    python bench/data.py PATH [--posts 1000000] [--campaigns 100]

Rows go in through SQLAlchemy Core in big batches (not through the intake: that is measured
elsewhere), shaped exactly as the importer writes them. Calls span the last 30 days, a few of
them in every state, so the console's overview and campaign pages have something to count.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rollcall.activity.models import Action, Campaign, Post, Signup, User
from rollcall.callpower.models import Call, CallPowerCampaign, CallState
from rollcall.db import Database, migrate

BATCH = 20_000


def build(path: Path, posts: int, campaigns: int, users: int | None = None) -> str:
    url = f"sqlite:///{path}"
    database = Database(url)
    migrate(database)
    rng = random.Random(1)
    users = users or max(1, posts // 20)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    with database.write_engine.begin() as connection:
        connection.execute(
            sa.insert(Campaign),
            [{"internal_title": f"Campaign {n}", "created_at": now, "updated_at": now} for n in range(campaigns)],
        )
        connection.execute(
            sa.insert(Action),
            [
                {
                    "name": f"Call {n}",
                    "campaign_id": n + 1,
                    "post_type": "phone-call",
                    "action_type": "make-call",
                    "callpower_campaign_id": n + 1 if n % 10 else None,  # every tenth unmapped
                    "noun": "calls",
                    "verb": "completed",
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(campaigns)
            ],
        )
        user_ids = [secrets.token_hex(12) for _ in range(users)]
        for start in range(0, users, BATCH):
            connection.execute(
                sa.insert(User),
                [
                    {
                        "id": user_ids[n],
                        "mobile": f"+1555{n:07d}",
                        "sms_status": "stop",
                        "source": "importer-client",
                        "source_detail": "CallPower",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start, min(users, start + BATCH))
                ],
            )
    signups: dict[tuple[int, int], int] = {}
    quantities: dict[int, int] = {}
    post_id = 0
    calls = 0
    expected_calls = posts / 0.882  # 10% of campaigns unmapped, 2% of the others' calls failed
    with database.write_engine.begin() as connection:
        while post_id < posts:
            call_rows, post_rows, new_signups = [], [], []
            for n in range(calls, calls + BATCH):
                if post_id >= posts:
                    break
                calls += 1
                user = rng.randrange(users)
                campaign = rng.randrange(campaigns) + 1
                # Calls arrive in id order, spread over the last 30 days (as a real intake stores them).
                when = now - dt.timedelta(seconds=30 * 86400 * (1 - n / expected_calls))
                key = (user, campaign)
                if key not in signups:
                    signups[key] = len(signups) + 1
                    new_signups.append(
                        {
                            "id": signups[key],
                            "northstar_id": user_ids[user],
                            "campaign_id": campaign,
                            "quantity": 0,
                            "source": "importer-client",
                            "source_details": "CallPower",
                            "created_at": when,
                            "updated_at": when,
                        }
                    )
                quantities[signups[key]] = quantities.get(signups[key], 0) + 1
                record = {
                    "mobile": f"+1555{user:07d}",
                    "callpower_campaign_id": campaign,
                    "status": "completed",
                    "call_timestamp": when.isoformat().replace("+00:00", "Z"),
                    "call_duration": 30,
                    "campaign_target_name": "Target",
                    "campaign_target_title": "Representative",
                    "campaign_target_district": "FL-7",
                    "callpower_campaign_name": f"CallPower {campaign}",
                    "number_dialed_into": "+15554441234",
                }
                mapped = campaign % 10 != 1
                state = (
                    CallState.IMPORTED if mapped and n % 50 else CallState.UNMAPPED if not mapped else CallState.FAILED
                )
                post_id += 1 if state == CallState.IMPORTED else 0
                call_rows.append(
                    {
                        "id": n + 1,
                        "state": state,
                        "dedup_key": f"{n:064d}",
                        "received_at": when,
                        "updated_at": when,
                        "raw": "{}",
                        "content_type": "application/json",
                        "record": record,
                        "callpower_campaign_id": campaign,
                        "callpower_campaign_name": record["callpower_campaign_name"],
                        "mobile": record["mobile"],
                        "call_timestamp": when,
                        "attempts": 1,
                        "next_attempt_at": when + dt.timedelta(hours=1) if state == CallState.FAILED else None,
                        "user_id": user_ids[user] if state == CallState.IMPORTED else None,
                        "signup_id": signups[key] if state == CallState.IMPORTED else None,
                        "post_id": post_id if state == CallState.IMPORTED else None,
                    }
                )
                if state == CallState.IMPORTED:
                    post_rows.append(
                        {
                            "id": post_id,
                            "signup_id": signups[key],
                            "campaign_id": campaign,
                            "northstar_id": user_ids[user],
                            "action_id": campaign,
                            "call_id": n + 1,
                            "type": "phone-call",
                            "action": f"Call {campaign - 1}",
                            "quantity": 1,
                            "status": "accepted",
                            "source": "importer-client",
                            "source_details": "CallPower",
                            "details": {"status_details": "completed", "call_duration": 30},
                            "call_timestamp": when,
                            "created_at": when,
                            "updated_at": when,
                        }
                    )
            if new_signups:
                connection.execute(sa.insert(Signup), new_signups)
            connection.execute(sa.insert(Call), call_rows)
            if post_rows:
                connection.execute(sa.insert(Post), post_rows)
        connection.execute(
            sa.update(Signup).where(Signup.id == sa.bindparam("sid")).values(quantity=sa.bindparam("q")),
            [{"sid": signup_id, "q": quantity} for signup_id, quantity in quantities.items()],
        )
        connection.execute(
            sa.insert(CallPowerCampaign).from_select(
                ["id", "name", "calls", "first_call_at", "last_call_at", "first_received_at", "last_received_at"],
                sa.select(
                    Call.callpower_campaign_id,
                    sa.func.max(Call.callpower_campaign_name),
                    sa.func.count(),
                    sa.func.min(Call.call_timestamp),
                    sa.func.max(Call.call_timestamp),
                    sa.func.min(Call.received_at),
                    sa.func.max(Call.received_at),
                ).group_by(Call.callpower_campaign_id),
            )
        )
        connection.exec_driver_sql("ANALYZE")
    database.dispose()
    print(
        f"built {path}: {calls} calls, {post_id} posts, {campaigns} campaigns in {time.perf_counter() - started:.0f} s"
    )
    return url


SHAPES = ("repeat", "realistic")
ANONYMOUS = "+266696687"  # one of the provider's placeholders for a withheld number


def backlog_records(count: int, shape: str = "repeat", *, day: str = "2017-11-07") -> Iterator[dict[str, Any]]:
    """Call records as a backlog holds them, made on `day`.

    - `repeat`: 20,000 members calling again and again, one CallPower campaign (the shape the
      first benchmarks used: few new users and signups).
    - `realistic`: a history as it comes: each member's session is three calls (one per target),
      a fifth of the calls from members who called before (so about one new member per 3.75
      calls), callers in scattered order, five mapped CallPower campaigns and one unmapped
      (campaign 6, 5% of the calls), 1% anonymous callers.
    """
    rng = random.Random(5)
    sessions = 0
    for n in range(count):
        if shape == "repeat":
            member, campaign = n % 20000, 1
        else:
            if n % 3 == 0:
                sessions += 1
            member = rng.randrange(sessions) if rng.random() < 0.2 else sessions
            campaign = 6 if rng.random() < 0.05 else 1 + member % 5
        if shape == "repeat":
            mobile = f"+1555{member:07d}"
        elif rng.random() < 0.01:
            mobile = ANONYMOUS
        else:
            mobile = f"+1555{member * 7_919 % 10_000_000:07d}"  # scattered: members are not in number order
        yield {
            "mobile": mobile,
            "status": "completed" if n % 3 else "busy",
            "call_timestamp": f"{day}T{n // 3_600_000_000 % 24:02d}:{n // 60_000_000 % 60:02d}:"
            f"{n // 1_000_000 % 60:02d}.{n % 1_000_000:06d}",
            "call_duration": n % 600,
            "campaign_target_title": "Representative",
            "campaign_target_district": "FL-7",
            "callpower_campaign_id": campaign,
            "campaign_target_name": f"Target {n % 3}",
            "callpower_campaign_name": f"Backlog {campaign}",
            "number_dialed_into": "+15554441234",
        }


def map_backlog_campaigns(url: str, shape: str = "repeat") -> None:
    """Campaigns and actions for a backlog's CallPower campaigns (the realistic one leaves 6 unmapped)."""
    from rollcall.activity import service as activity
    from rollcall.callpower import operations

    database = Database(url)
    with database.writing() as session:
        for callpower_id in range(1, 2 if shape == "repeat" else 6):
            campaign = activity.create_campaign(session, internal_title=f"Backlog {callpower_id}")
            operations.add_action(session, campaign_id=campaign.id, name="Call", callpower_campaign_id=callpower_id)
    database.dispose()


def store_backlog(
    url: str, count: int, *, shape: str = "repeat", day: str = "2017-11-07", state: str = "received"
) -> None:
    """`count` stored calls waiting for the importer (`backlog_records`); with `state="imported"`,
    calls of the past instead (the calls table's history)."""
    from rollcall.callpower import deliveries

    database = Database(url)
    batch = []
    for n, record in enumerate(backlog_records(count, shape, day=day)):
        batch.append(deliveries.Delivery.of_payload(record, raw="{}", content_type="application/json", region="US"))
        if len(batch) == 5000 or n == count - 1:
            with database.writing() as session:
                deliveries.store_deliveries(session, batch)
            batch.clear()
    with database.engine.begin() as connection:
        if state != "received":
            connection.execute(sa.text("UPDATE calls SET state = :state"), {"state": state})
        connection.exec_driver_sql("ANALYZE")
    database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    arguments = parser.parse_args()
    build(arguments.path, arguments.posts, arguments.campaigns)
