"""A large database for the read benchmarks: campaigns, actions, users, signups, calls and posts.

    python bench/data.py PATH|POSTGRES_URL [--posts 1000000] [--campaigns 100] [--days 30]
                         [--big-campaign-posts 0]

Bulk-loaded, not through the intake (that is measured elsewhere), shaped as the product writes:
ids in arrival order, de-duplication keys time first, a post per imported call, one signup per
member and campaign. Members call one or two campaigns, about one new member per four calls;
one campaign in ten has no action (its calls wait `unmapped`), 2% of the others' calls failed
(retried in 6 hours: a benchmark does not import them meanwhile), a few calls were rejected or
anonymous (`discarded`). Calls span the last `--days` days.

The calls are as a year of real campaigns has them (the campaign results' benchmark reads them):
about 63 targets (a House member and a senator in each of 30 states, and a few custom targets
without a district), CallPower's statuses in real proportions (three calls in four completed, a
fifth busy or unanswered, a few failed or canceled), talk of 20 seconds to 10 minutes when
completed, and more calls on weekdays and in the evening (US Eastern) than at night or on
weekends. `--big-campaign-posts N` gives campaign 2 (mapped) about N of the posts.

On SQLite the rows go straight to the driver with the secondary indexes dropped and the file's
journal off; on PostgreSQL through COPY with the foreign-key triggers off for the session, a
connection per table working at once; signups last, with their quantities counted as the posts
were made. Then the indexes are made again, the kept call counts are computed from the rows
(`statistics.rebuild`), and so are the campaign results (`calls.results.rebuild`, timed), and the
planner's statistics are gathered.
"""

from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import datetime as dt
import itertools
import queue
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from rollcall.callpower.source import CallPower  # noqa: E402
from rollcall.calls import results, statistics
from rollcall.calls.models import CallState
from rollcall.db import Database, migrate, normalize_url

BATCH = 50_000
TABLES = ("users", "signups", "calls", "posts")  # loaded in this order; their indexes go first

_USERS = ("id", "mobile", "sms_status", "source", "source_detail", "created_at", "updated_at")
_SIGNUPS = ("id", "northstar_id", "campaign_id", "quantity", "source", "source_details", "created_at", "updated_at")
_CALLS = (
    "id", "state", "dedup_key", "received_at", "updated_at", "raw", "content_type", "record", "errors",
    "callpower_campaign_id", "callpower_campaign_name", "mobile", "call_timestamp", "attempts",
    "next_attempt_at", "last_error", "imported_at", "user_id", "signup_id", "post_id",
)  # fmt: skip
_POSTS = (
    "id", "signup_id", "campaign_id", "northstar_id", "action_id", "call_id", "type", "action", "quantity",
    "status", "source", "source_details", "details", "call_timestamp", "created_at", "updated_at",
)  # fmt: skip
COLUMNS = {"users": _USERS, "signups": _SIGNUPS, "calls": _CALLS, "posts": _POSTS}


class _SQLite:
    """Rows straight into the file through the driver, secondary indexes made after."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -400000", "temp_store = MEMORY"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.connection.execute("BEGIN")
        self.indexes = self.connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(TABLES))})",
            TABLES,
        ).fetchall()
        for name, _ in self.indexes:
            self.connection.execute(f"DROP INDEX {name}")

    @staticmethod
    def time(moment: dt.datetime) -> str:
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds")

    def load(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        columns = COLUMNS[table]
        marks = ", ".join("?" * len(columns))
        self.connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def finish(self) -> None:
        self.connection.execute("COMMIT")
        for _, sql in self.indexes:
            self.connection.execute(sql)
        self.connection.close()


class _Postgres:
    """COPY with the foreign-key triggers off (session_replication_role), secondary indexes made after.

    Each table has a connection and a thread of its own, so the server parses and writes the
    calls and the posts on both cores at once while the rows are made here (COPY is bound by the
    server, not by this side); the indexes are then made two at a time, largest table first."""

    def __init__(self, url: str) -> None:
        self.url = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = self._connect()
        self.indexes = connection.execute(
            "SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (list(TABLES),),
        ).fetchall()
        for _, name, _ in self.indexes:
            connection.execute(f"DROP INDEX {name}")
        connection.commit()
        connection.close()
        self.queues: dict[str, queue.Queue[Sequence[tuple[Any, ...]] | None]] = {}
        self.threads: list[threading.Thread] = []
        self.failures: list[BaseException] = []
        for table in TABLES:
            self.queues[table] = queue.Queue(maxsize=4)
            thread = threading.Thread(target=self._copy, args=(table,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _connect(self, *, autocommit: bool = False) -> Any:
        import psycopg

        connection = psycopg.connect(self.url, autocommit=autocommit)
        connection.execute("SET session_replication_role = replica")
        connection.execute("SET maintenance_work_mem = '512MB'")
        return connection

    def _copy(self, table: str) -> None:
        try:
            connection = self._connect()
            columns = ", ".join(COLUMNS[table])
            while (rows := self.queues[table].get()) is not None:
                with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            connection.commit()
            connection.close()
        except BaseException as failure:  # noqa: BLE001 (raised again by finish, in the main thread)
            self.failures.append(failure)
            while self.queues[table].get() is not None:  # let the producer finish rather than block
                pass

    @staticmethod
    def time(moment: dt.datetime) -> str:
        return moment.isoformat()

    def load(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        self.queues[table].put(rows)

    def finish(self) -> None:
        for table in TABLES:
            self.queues[table].put(None)
        for thread in self.threads:
            thread.join()
        if self.failures:
            raise self.failures[0]
        order = {"calls": 0, "posts": 1, "signups": 2, "users": 3}
        statements = [sql for _, _, sql in sorted(self.indexes, key=lambda index: order[index[0]])]

        def make_index(sql: str) -> None:
            with self._connect(autocommit=True) as connection:
                connection.execute(sql)

        with concurrent.futures.ThreadPoolExecutor(2) as builders:  # two at a time, largest table first
            list(builders.map(make_index, statements))  # (raises the first failure)
        connection = self._connect(autocommit=True)
        for table in ("calls", "posts", "signups"):  # (users have text ids)
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
        connection.close()


def build(target: Path | str, posts: int, campaigns: int, *, days: int = 30, big_campaign_posts: int = 0) -> str:
    """Make the database (a SQLite file at a path, or a PostgreSQL URL's empty database)."""
    url = str(target) if "://" in str(target) else f"sqlite:///{target}"
    database = Database(url)
    migrate(database)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    with database.write_engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO campaigns (id, internal_title, created_at, updated_at) VALUES (:id, :title, :at, :at)"
            ),
            [{"id": n + 1, "title": f"Campaign {n}", "at": now} for n in range(campaigns)],
        )
        connection.execute(
            sa.text(
                "INSERT INTO actions (id, name, campaign_id, post_type, action_type, callpower_campaign_id, noun, "
                "verb, created_at, updated_at) VALUES (:id, :name, :id, 'phone-call', 'make-call', :cp, 'calls', "
                "'completed', :at, :at)"
            ),
            [
                {"id": n + 1, "name": f"Call {n}", "cp": n + 1 if n % 10 else None, "at": now}  # every tenth unmapped
                for n in range(campaigns)
            ],
        )
    database.dispose()
    sink: _SQLite | _Postgres = _Postgres(url) if url.startswith("postgresql") else _SQLite(str(target))
    calls, made = _load(sink, now, posts, campaigns, days, big_campaign_posts)
    loaded = time.perf_counter()
    sink.finish()
    indexed = time.perf_counter()
    database = Database(url)
    with database.writing() as session:
        session.execute(
            sa.text(
                "INSERT INTO callpower_campaigns (id, name, first_call_at, last_call_at, first_received_at, "
                "last_received_at) SELECT callpower_campaign_id, max(callpower_campaign_name), min(call_timestamp), "
                "max(call_timestamp), min(received_at), max(received_at) FROM calls "
                "WHERE callpower_campaign_id IS NOT NULL GROUP BY callpower_campaign_id"
            )
        )
        statistics.rebuild(session)
    counted = time.perf_counter()
    with database.writing() as session:
        results.rebuild(session, CallPower())
    results_seconds = time.perf_counter() - counted
    with database.engine.begin() as connection:  # committed: an ANALYZE rolled back leaves no statistics
        connection.exec_driver_sql("ANALYZE")
    database.dispose()
    print(f"campaign results counted from the posts (rollcall stats rebuild's half) in {results_seconds:.0f} s")
    print(
        f"built {target if '://' not in str(target) else database.engine.url.render_as_string()}: {calls} calls, "
        f"{made} posts, {campaigns} campaigns in {time.perf_counter() - started:.0f} s "
        f"(rows {loaded - started:.0f} s, indexes {indexed - loaded:.0f} s, counts and ANALYZE "
        f"{time.perf_counter() - indexed:.0f} s)"
    )
    return url


STATES = (
    "AL", "AZ", "CA", "CO", "CT", "FL", "GA", "IL", "IN", "KY", "LA", "MA", "MD", "MI", "MN",
    "MO", "NC", "NJ", "NV", "NY", "OH", "OK", "OR", "PA", "SC", "TN", "TX", "VA", "WA", "WI",
)  # fmt: skip
# (name, title, district): a House member and a senator per state, and custom targets.
TARGETS = [
    target
    for number, state in enumerate(STATES)
    for target in (
        (f"Member {state}{number % 9 + 1}", "Representative", f"{state}-{number % 9 + 1}"),
        (f"Senator of {state}", "Senator", state),
    )
] + [
    ("Governor's office", "Governor", None),
    ("Speaker of the House", "Speaker", None),
    ("Office line", "Custom", None),
]
TARGET_WEIGHTS = [1.0 / (rank + 4) for rank in range(len(TARGETS))]  # a few targets get most calls
_NOT_DETAILS = ("mobile", "callpower_campaign_id", "status")  # (what a post's details leave out)
STATUSES = ("completed", "busy", "no-answer", "failed", "canceled", "unknown")
STATUS_WEIGHTS = (75, 8, 12, 3, 1, 1)


def _hour_weights(start: dt.datetime, hours: int) -> list[float]:
    """How many calls each hour gets, relatively: weekday evenings most, nights and weekends least
    (US Eastern, UTC-5 for simplicity); a cumulative sum of it spreads calls over the span."""
    by_hour = [0.1] * 7 + [0.5, 0.8, 1.2, 1.3, 1.2, 1.0, 1.0, 1.0, 1.1, 1.2, 1.6, 1.8, 1.7, 1.3, 0.6, 0.4, 0.2]
    weights = []
    for n in range(hours):
        local = start + dt.timedelta(hours=n - 5)
        weights.append(by_hour[local.hour] * (0.45 if local.weekday() >= 5 else 1.0))
    return weights


def _load(
    sink: _SQLite | _Postgres, now: dt.datetime, posts: int, campaigns: int, days: int, big: int = 0
) -> tuple[int, int]:
    """Every row, in batches; how many calls and posts."""
    rng = random.Random(1)
    beginning = now - dt.timedelta(days=days)
    cumulative = list(itertools.accumulate(_hour_weights(beginning, days * 24)))
    total_weight = cumulative[-1]

    def moment_of(fraction: float) -> dt.datetime:
        """The time a fraction of the way through the calls is made (in order: ids follow time)."""
        wanted = fraction * total_weight
        hour = min(bisect.bisect_left(cumulative, wanted), len(cumulative) - 1)
        before = cumulative[hour - 1] if hour else 0.0
        within = (wanted - before) / (cumulative[hour] - before) if cumulative[hour] > before else 0.0
        return beginning + dt.timedelta(hours=hour + min(max(within, 0.0), 0.999999))

    REJECTED, DISCARDED, UNMAPPED, FAILED, IMPORTED = (  # noqa: N806 (plain text: enums cost per row)
        s.value
        for s in (CallState.REJECTED, CallState.DISCARDED, CallState.UNMAPPED, CallState.FAILED, CallState.IMPORTED)
    )
    at = sink.time
    users = max(1, posts // 4)
    user_ids = [secrets.token_hex(12) for _ in range(users)]
    created = at(now - dt.timedelta(days=days))
    for start in range(0, users, BATCH):
        sink.load(
            "users",
            [
                (user_ids[n], f"+1555{n:07d}", "stop", "importer-client", "CallPower", created, created)
                for n in range(start, min(users, start + BATCH))
            ],
        )
    signups: dict[tuple[int, int], int] = {}
    signup_rows: list[tuple[Any, ...]] = []  # written last, with their quantities (no update pass after)
    quantities = [0]  # by signup id
    expected_calls = posts / 0.88  # 10% of campaigns unmapped, 2% of the others' calls failed
    if big:  # campaign 2's calls all mapped; the others' campaigns as above
        others = range(3, campaigns + 1)
        mapped_share = sum(1 for c in others if c % 10 != 1) / max(1, len(others))
        expected_calls = posts / (0.98 * (big / posts + (1 - big / posts) * mapped_share))
    n = post_id = 0
    while post_id < posts:
        call_rows, post_rows = [], []
        for _ in range(BATCH):
            if post_id >= posts:
                break
            n += 1
            user = min(users - 1, int(users * n / expected_calls)) if rng.random() < 0.25 else rng.randrange(users)
            campaign = (user * 7 + (1 if rng.random() < 0.3 else 0)) % campaigns + 1  # one or two per member
            if big:  # campaign 2 has about `big` of the posts
                campaign = 2 if rng.random() < big / posts else (3 + campaign % max(1, campaigns - 2))
                if campaign > campaigns:
                    campaign = 2
            # Calls arrive in id order, spread over the last `days` days (as a real intake stores them).
            when = moment_of(min(1.0, n / expected_calls))
            moment = at(when)
            name, title, district = rng.choices(TARGETS, TARGET_WEIGHTS)[0]
            status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
            duration = rng.randint(20, 600) if status == "completed" else 0
            mobile = f"+1555{user:07d}"
            mapped = campaign % 10 != 1
            if n % 997 == 0:
                state = REJECTED
            elif n % 499 == 0:
                state, mobile = DISCARDED, "+266696687"
            elif not mapped:
                state = UNMAPPED
            else:
                state = FAILED if n % 50 == 0 else IMPORTED
            record = {
                "mobile": mobile,
                "callpower_campaign_id": campaign,
                "status": status,
                "call_timestamp": moment.replace(" ", "T") + "Z",
                "call_duration": duration,
                "campaign_target_name": name,
                "campaign_target_title": title,
                "campaign_target_district": district,
                "callpower_campaign_name": f"CallPower {campaign}",
                "number_dialed_into": "+15554441234",
            }
            text = orjson.dumps(record).decode()
            imported = state == IMPORTED
            signup = None
            if imported:
                key = (user, campaign)
                signup = signups.get(key)
                if signup is None:
                    signup = signups[key] = len(signups) + 1
                    signup_rows.append((signup, user_ids[user], campaign, "importer-client", "CallPower", moment))
                    quantities.append(0)
                quantities[signup] += 1
                post_id += 1
                details = {"status_details": status} | {
                    key: value
                    for key, value in record.items()
                    if key not in ("mobile", "callpower_campaign_id", "status")
                }
                post_rows.append(
                    (post_id, signup, campaign, user_ids[user], campaign, n, "phone-call", f"Call {campaign - 1}", 1,
                     "accepted" if status == "completed" else "incomplete", "importer-client", "CallPower",
                     orjson.dumps(details).decode(), moment, moment, moment)
                )  # fmt: skip
            if state == REJECTED:
                call_rows.append(
                    (n, state, None, moment, moment, text.replace('"Representative"', "null"),
                     "application/json", None, '{"campaign_target_title": ["Give the target\'s title."]}',
                     campaign, None, None, None, 0, None, None, None, None, None, None)
                )  # fmt: skip
                continue
            call_rows.append(
                (n, state, f"{moment}/{n:x}"[:64], moment, moment, text, "application/json", text, None,
                 campaign, record["callpower_campaign_name"], mobile, moment, 1,
                 at(now + dt.timedelta(hours=6)) if state == FAILED else None,
                 "OperationalError: database is locked" if state == FAILED else None,
                 moment if imported else None, user_ids[user] if imported else None, signup,
                 post_id if imported else None)
            )  # fmt: skip
        sink.load("calls", call_rows)
        if post_rows:
            sink.load("posts", post_rows)
    for start in range(0, len(signup_rows), BATCH):
        sink.load(
            "signups",
            [
                (signup, member, campaign, quantities[signup], source, details, moment, moment)
                for signup, member, campaign, source, details, moment in signup_rows[start : start + BATCH]
            ],
        )
    return n, post_id


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


def scalar(url: str, sql: str) -> Any:
    """One value read from the database at `url` (a SQLite file's or PostgreSQL's), on a
    connection of its own."""
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql(sql).scalar_one()
    finally:
        engine.dispose()


def waiting(url: str) -> int:
    """Calls stored and not yet imported: what a benchmark waits for the importer to empty."""
    return int(scalar(url, "SELECT count(*) FROM calls WHERE state = 'received'"))


def map_backlog_campaigns(url: str, shape: str = "repeat") -> None:
    """Campaigns and actions for a backlog's CallPower campaigns (the realistic one leaves 6 unmapped)."""
    from rollcall.activity import service as activity
    from rollcall.calls import service as operations

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
    from rollcall.calls import deliveries

    database = Database(url)
    batch = []
    for n, record in enumerate(backlog_records(count, shape, day=day)):
        batch.append(CallPower("US").check(record, raw="{}", content_type="application/json"))
        if len(batch) == 5000 or n == count - 1:
            with database.writing() as session:
                deliveries.store_deliveries(session, batch, CallPower())
            batch.clear()
    if state != "received":
        with database.writing() as session:
            session.execute(sa.text("UPDATE calls SET state = :state"), {"state": state})
            statistics.rebuild(session)
    with database.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    database.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="a SQLite file to make, or the URL of an empty PostgreSQL database")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--big-campaign-posts", type=int, default=0, help="posts of campaign 2 (the rest elsewhere)")
    arguments = parser.parse_args()
    build(
        arguments.target,
        arguments.posts,
        arguments.campaigns,
        days=arguments.days,
        big_campaign_posts=arguments.big_campaign_posts,
    )
