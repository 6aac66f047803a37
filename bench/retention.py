"""The body retention's cost to the intake: `rollcall serve` with `ROLLCALL_CALL_BODY_RETENTION_DAYS=1`
on a database full of old calls, against the same server without it and a bare endpoint.

    python bench/retention.py DATABASE [--rounds 3] [--seconds 10]

DATABASE is one `bench/data.py` built (calls over the last 30 days, so nearly all are past a day).
Its calls get bodies of a realistic size (the size CallPower's are), then it is copied twice:
one copy is served with the retention on, the other without. wrk rounds (50 connections)
alternate between the bare endpoint and the two; the ratios, and how many bodies the sweep
removed meanwhile, are printed. The sweep runs while the importer has nothing to import, so it
works in the gaps the intake leaves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from intake import KEY, wrk  # noqa: E402
from processes import ROLLCALL, free_port, start, start_bare, stop, wait_ready  # noqa: E402

BODY = (
    '{"mobile":"+15551231234","status":"completed","call_timestamp":"2017-11-07 18:54:10.829655",'
    '"call_duration":36,"campaign_target_title":"Representative","campaign_target_district":"FL-7",'
    '"callpower_campaign_id":1,"campaign_target_name":"Mickey Mouse",'
    '"callpower_campaign_name":"DefendDreamers_Nov9_CongressCalls","number_dialed_into":"+15554441234"}'
)


def removed(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM calls WHERE body_removed_at IS NOT NULL").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        workdir = Path(directory)
        source = workdir / "source.db"
        with sqlite3.connect(args.database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(args.database, source)
        with sqlite3.connect(source) as connection:
            connection.execute("UPDATE calls SET raw = ?", (BODY,))
            old = connection.execute(
                "SELECT count(*) FROM calls WHERE received_at < datetime('now', '-1 day')"
                " AND state IN ('imported', 'discarded', 'rejected')"
            ).fetchone()[0]
        print(f"{old} calls past the retention of 1 day, with bodies of {len(BODY)} bytes")
        servers = {}
        for name, retention in (("without", None), ("with", "1")):
            path = workdir / f"{name}.db"
            shutil.copy(source, path)
            env = {**os.environ, "ROLLCALL_DATABASE_URL": f"sqlite:///{path}", "CALLPOWER_API_KEY": KEY}
            if retention:
                env["ROLLCALL_CALL_BODY_RETENTION_DAYS"] = retention
            port = free_port()
            process = start([ROLLCALL, "serve", "--port", str(port)], env, workdir / f"serve-{name}.log")
            wait_ready(f"http://127.0.0.1:{port}/api/v1/callpower/call", process)
            servers[name] = (port, process, path)
        bare_port = free_port()
        bare = start_bare(bare_port, dict(os.environ), workdir / "bare.log")
        wait_ready(f"http://127.0.0.1:{bare_port}/api/v1/callpower/call", bare)
        ports = {"bare": bare_port, "without": servers["without"][0], "with": servers["with"][0]}
        try:
            results: dict[str, list[float]] = {name: [] for name in ports}
            for round_number in range(args.rounds):
                for name, port in ports.items():
                    figures = wrk(port, 50, args.seconds)
                    results[name].append(figures["rps"])
                    print(
                        f"  round {round_number + 1} {name:8s} {figures['rps']:8.0f} req/s"
                        f"  p99 {figures['p99']:7.2f} ms"
                    )
                print(f"    bodies removed so far by the server with the retention: {removed(servers['with'][2])}")
            for name in ("without", "with"):
                ratios = [ours / bare for ours, bare in zip(results[name], results["bare"], strict=True)]
                print(f"  median ratio {name} retention / bare: {statistics.median(ratios):.2f}"
                      f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip
        finally:
            for _, process, _ in servers.values():
                stop(process)
            stop(bare)


if __name__ == "__main__":
    main()
