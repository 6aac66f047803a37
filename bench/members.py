"""Members' data benchmark: erasing a member with many calls on a big database.

    python bench/members.py [--posts 1000000] [--calls 1000] [--rounds 3] [--database PATH]

Builds (or reuses, with `--database`) a database of `--posts` posts (`bench/data.py`), then,
each round, gives one member `--calls` calls (stored and imported as the intake and importer
would: on several campaigns, one rejected) and times `members.erase` (the use case the API, CLI
and console call: the erasure, its audit entry and the checkpoint). Medians are what
docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import build  # noqa: E402

from rollcall.activity.models import User  # noqa: E402
from rollcall.callpower.source import CallPower  # noqa: E402
from rollcall.calls import deliveries  # noqa: E402
from rollcall.calls.queue import Importer  # noqa: E402
from rollcall.calls.source import Delivery  # noqa: E402
from rollcall.config import Settings  # noqa: E402
from rollcall.db import Database  # noqa: E402
from rollcall.logs import configure_logging  # noqa: E402
from rollcall.members import service as members  # noqa: E402


def member_calls(mobile: str, count: int, round_number: int) -> list[Delivery]:
    records = []
    for n in range(count):
        records.append(
            {
                "mobile": mobile,
                "status": "completed",
                "call_timestamp": f"2026-0{1 + round_number}-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
                "call_duration": 30,
                "campaign_target_title": None if n == 0 else "Representative",  # the first is rejected
                "campaign_target_district": "FL-7",
                "callpower_campaign_id": 1 + n % 9,  # campaigns 1-9 are mapped
                "campaign_target_name": f"Target {n % 3}",
                "callpower_campaign_name": "Bench",
                "number_dialed_into": "+15554441234",
            }
        )
    return [CallPower("US").check(r, raw=str(r), content_type="application/json") for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database",
        type=Path,
        help="a database bench/data.py built (built there if it does not exist; else a temporary one)",
    )
    args = parser.parse_args()
    configure_logging("WARNING")  # not a line per imported call
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"))
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        path = args.database or Path(directory) / "members.db"
        if not path.exists():
            started = time.perf_counter()
            build(path, args.posts, 100)
            print(f"built {args.posts} posts in {time.perf_counter() - started:.0f} s")
        url = f"sqlite:///{path}"
        settings = Settings(database_url=url)
        database = Database(url, settings)
        with database.reading() as session:
            calls = session.scalar(sa.text("SELECT count(*) FROM calls"))
        print(f"database: {calls} calls")
        importer = Importer(database, settings, CallPower())
        seconds = []
        for round_number in range(args.rounds):
            mobile = f"+1555888{round_number:04d}"
            with database.writing() as session:
                deliveries.store_deliveries(session, member_calls(mobile, args.calls, round_number), CallPower())
            while importer.import_batch():
                pass
            with database.reading() as session:
                user_id = session.scalar(sa.select(User.id).where(User.mobile == mobile))
            assert user_id is not None
            started = time.perf_counter()
            erased = members.erase(database, user_id, "bench")
            seconds.append(time.perf_counter() - started)
            print(f"  round {round_number + 1}: erased {erased.model_dump()} in {seconds[-1] * 1000:.0f} ms")
        print(f"median: {statistics.median(seconds) * 1000:.0f} ms to erase a member with {args.calls} calls")
        database.dispose()


if __name__ == "__main__":
    main()
