"""Importer benchmark: `rollcall worker` working off a stored backlog, in two shapes of history.

    python bench/importer.py [--backlog 100000] [--shape repeat|realistic|both] [--postgres URL]
                             [--into FILE]

`repeat` is members who called before (few new users and signups); `realistic` is a history as
it comes (about one new member per 3.75 calls, five campaigns and an unmapped one, 1% anonymous
callers: `data.backlog_records`). Prints calls/s for each; docs/benchmarks.md quotes them.
With `--postgres URL` (a server the benchmark may create databases on), each shape runs on a
fresh PostgreSQL database made there and dropped afterwards, instead of a SQLite file. With
`--into FILE` (a SQLite file `bench/data.py` built, at the current migration), each shape is
imported into a copy of it instead of an empty file, its calls made on the day after the file's
last: what the importer does on a big database (CallPower campaigns 1 to 6 are mapped there).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from data import SHAPES, map_backlog_campaigns, scalar, store_backlog, waiting  # noqa: E402
from postgres import drop_database, fresh_database  # noqa: E402
from processes import ROLLCALL, start, stop  # noqa: E402

from rollcall.calls import statistics  # noqa: E402
from rollcall.db import Database, migrate  # noqa: E402


def measure(
    url: str, backlog: int, shape: str, workdir: Path, concurrency: int = 1, *, day: str | None = None
) -> float:
    """Store the backlog, start `rollcall worker`, time it until nothing waits; calls/s. With
    `day`, into a database built by bench/data.py (migrated, its campaigns mapped), on that day."""
    if day is None:
        database = Database(url)
        migrate(database)
        database.dispose()
        map_backlog_campaigns(url, shape)
    print(f"\n{shape}: storing a backlog of {backlog} calls ...")
    store_backlog(url, backlog, shape=shape, **({"day": day} if day else {}))
    env = {**os.environ, "ROLLCALL_DATABASE_URL": url}
    worker = start([ROLLCALL, "worker", "--concurrency", str(concurrency)], env, workdir / f"worker-{shape}.log")
    started = time.perf_counter()
    try:
        while waiting(url):
            time.sleep(0.1)
        seconds = time.perf_counter() - started
    finally:
        stop(worker)
    database = Database(url)
    with database.reading() as session:
        counts = statistics.count_calls_by_state(session)
        users = session.scalar(sa.text("SELECT count(*) FROM users"))
        signups = session.scalar(sa.text("SELECT count(*) FROM signups"))
    database.dispose()
    handled = backlog - int(counts["received"])
    rate = handled / seconds
    print(f"  {concurrency} importer(s): {handled} calls in {seconds:.1f} s: {rate:.0f} calls/s")
    print(f"  made {users} users and {signups} signups; states: { {k: v for k, v in counts.items() if v} }")
    return rate


def _day_after_last_call(url: str) -> str:
    last = scalar(url, "SELECT max(call_timestamp) FROM posts")
    return (dt.date.fromisoformat(str(last)[:10]) + dt.timedelta(days=1)).isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--postgres", metavar="URL", help="run on PostgreSQL (databases made on this server)")
    parser.add_argument("--into", metavar="FILE", type=Path, help="import into a copy of this bench/data.py file")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"))
    shapes = SHAPES if args.shape == "both" else (args.shape,)
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        workdir = Path(directory)
        for shape in shapes:
            if args.into:
                copy = workdir / f"{shape}-into.db"
                shutil.copyfile(args.into, copy)
                url = f"sqlite:///{copy}"
                measure(url, args.backlog, shape, workdir, args.concurrency, day=_day_after_last_call(url))
                continue
            if not args.postgres:
                measure(f"sqlite:///{workdir / f'{shape}.db'}", args.backlog, shape, workdir, args.concurrency)
                continue
            url = fresh_database(args.postgres, mapped=False)
            try:
                measure(url, args.backlog, shape, workdir, args.concurrency)
            finally:
                drop_database(args.postgres, url)


if __name__ == "__main__":
    main()
