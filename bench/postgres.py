"""PostgreSQL benchmark: intake with two API processes, importers on a backlog.

    python bench/postgres.py [--url postgresql://postgres@127.0.0.1:5432/test] [--seconds 10]
                             [--rounds 3] [--backlog 100000] [--importers 1,2,4]

1. Intake: `rollcall serve --workers 2` on PostgreSQL against `rollcall serve` on SQLite (the
   embedded default), alternating rounds of wrk at 50 connections; requests/s, p50, p99, ratio.
2. Importers: for each count N, a fresh backlog of stored calls emptied by
   `rollcall worker --concurrency N`; calls/s.

It creates and drops its own databases on the server the URL points at.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import store_backlog, waiting  # noqa: E402
from intake import KEY, wrk  # noqa: E402
from processes import ROLLCALL, free_port, start, stop, wait_ready  # noqa: E402

from rollcall.activity import service as activity  # noqa: E402
from rollcall.calls import service as operations  # noqa: E402
from rollcall.db import Database, migrate, normalize_url  # noqa: E402


def fresh_database(admin_url: str, *, mapped: bool = True) -> str:
    """A new database on the server of `admin_url`, migrated; with `mapped`, CallPower campaign 1
    mapped to a campaign's action."""
    name = f"rollcall_bench_{secrets.token_hex(4)}"
    engine = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    url = sa.engine.make_url(normalize_url(admin_url)).set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    migrate(database)
    if mapped:
        with database.writing() as session:
            campaign = activity.create_campaign(session, internal_title="Bench")
            action = activity.create_action(session, campaign_id=campaign.id, name="Call")
            operations.map_campaign(session, action.id, 1)
    database.dispose()
    return url


def drop_database(admin_url: str, url: str) -> None:
    engine = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)')
    engine.dispose()


def intake(args: argparse.Namespace, workdir: Path) -> None:
    pg_url = fresh_database(args.url)
    sqlite_url = f"sqlite:///{workdir / 'bench.db'}"
    sqlite = Database(sqlite_url)
    migrate(sqlite)
    with sqlite.writing() as session:
        campaign = activity.create_campaign(session, internal_title="Bench")
        action = activity.create_action(session, campaign_id=campaign.id, name="Call")
        operations.map_campaign(session, action.id, 1)
    sqlite.dispose()
    ports = {"postgresql x2": free_port(), "sqlite x1": free_port()}
    servers = {
        "postgresql x2": start(
            [ROLLCALL, "serve", "--port", str(ports["postgresql x2"]), "--workers", "2"],
            {**os.environ, "ROLLCALL_DATABASE_URL": pg_url, "CALLPOWER_API_KEY": KEY},
            workdir / "pg.log",
        ),
        "sqlite x1": start(
            [ROLLCALL, "serve", "--port", str(ports["sqlite x1"])],
            {**os.environ, "ROLLCALL_DATABASE_URL": sqlite_url, "CALLPOWER_API_KEY": KEY},
            workdir / "sqlite.log",
        ),
    }
    try:
        for name, process in servers.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/api/v1/callpower/call", process)
            wrk(ports[name], 50, 2)
        print(f"\nintake, 50 connections: {args.rounds} rounds of {args.seconds}s, alternating")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for round_number in range(args.rounds):
            for name in servers:
                figures = wrk(ports[name], 50, args.seconds)
                results[name].append(figures)
                print(
                    f"  round {round_number + 1} {name:14s} {figures['rps']:8.0f} req/s"
                    f"  p50 {figures['p50']:7.2f} ms  p99 {figures['p99']:7.2f} ms  non-2xx {figures['non_2xx']:.0f}"
                )
        for name, rounds in results.items():
            print(
                f"  median {name:14s} {statistics.median(r['rps'] for r in rounds):8.0f} req/s"
                f"  p50 {statistics.median(r['p50'] for r in rounds):7.2f} ms"
                f"  p99 {statistics.median(r['p99'] for r in rounds):7.2f} ms"
            )
        ratios = [p["rps"] / s["rps"] for p, s in zip(results["postgresql x2"], results["sqlite x1"], strict=True)]
        print(f"  median ratio postgresql/sqlite: {statistics.median(ratios):.2f}")
    finally:
        for process in servers.values():
            stop(process)
        drop_database(args.url, pg_url)


def importers(args: argparse.Namespace, workdir: Path) -> None:
    print(f"\nimporters on a backlog of {args.backlog} calls")
    for count in (int(n) for n in args.importers.split(",")):
        url = fresh_database(args.url)
        try:
            store_backlog(url, args.backlog)
            env = {**os.environ, "ROLLCALL_DATABASE_URL": url}
            worker = start([ROLLCALL, "worker", "--concurrency", str(count)], env, workdir / f"worker-{count}.log")
            started = time.perf_counter()
            try:
                while waiting(url):
                    time.sleep(0.25)
                seconds = time.perf_counter() - started
            finally:
                stop(worker)
            print(
                f"  {count} importer(s): {args.backlog} calls in {seconds:.1f} s = {args.backlog / seconds:.0f} calls/s"
            )
        finally:
            drop_database(args.url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url", default=os.environ.get("ROLLCALL_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--importers", default="1,2,4")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--skip-importers", action="store_true")
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        if not args.skip_intake:
            intake(args, Path(directory))
        if not args.skip_importers:
            importers(args, Path(directory))


if __name__ == "__main__":
    main()
