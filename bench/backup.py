"""Backups under load (issue #24): a backup of a 1,000,000-post SQLite database taken while the
intake is under wrk's load, against the same load without one; then the backup's duration and
size, and how long `rollcall backups verify` and `rollcall restore` take.

    python bench/backup.py [--posts 1000000] [--keep PATH] [--seconds 10] [--rounds 3]

Builds the database with bench/data.py (at `--keep PATH`, reused if it exists), starts
`rollcall serve` on a copy of it and the bare endpoint (bench/bare_app.py), and in each round
drives, with 50 connections for `--seconds`: the bare endpoint, rollcall alone, the bare endpoint
again, and rollcall while `rollcall backup` runs (started with the scheduled backup's niceness,
10, as `rollcall serve`'s backup process has). It prints requests/s, p50/p99, answers not 2xx and
the ratio to the bare endpoint of the adjacent runs, with and without the backup.

Target (issue #24): the intake's ratio during a backup at least 0.8 of its ratio without, p99
under 100 ms, no 503. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from data import build  # noqa: E402
from intake import KEY, wrk  # noqa: E402
from processes import ROLLCALL, free_port, start, start_bare, stop, wait_ready  # noqa: E402


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="build the database here (or reuse it if it exists)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        workdir = Path(directory)
        source = args.keep or workdir / "built.db"
        if not source.exists():
            build(source, args.posts, args.campaigns, days=365, big_campaign_posts=args.posts)
        database = workdir / "rollcall.db"
        shutil.copyfile(source, database)
        backups = workdir / "backups"
        env = {
            **os.environ,
            "ROLLCALL_DATABASE_URL": f"sqlite:///{database}",
            "CALLPOWER_API_KEY": KEY,
            "ROLLCALL_BACKUP_DIR": str(backups),
        }
        print(f"database: {database.stat().st_size / 2**20:,.0f} MiB ({args.posts:,} posts)")
        ours_port, bare_port = free_port(), free_port()
        ours = start([ROLLCALL, "serve", "--port", str(ours_port)], env, workdir / "serve.log")
        bare = start_bare(bare_port, env, workdir / "bare.log")
        durations: list[float] = []
        rows: dict[str, list[dict[str, float]]] = {"alone": [], "backup": []}
        ratios: dict[str, list[float]] = {"alone": [], "backup": []}
        try:
            wait_ready(f"http://127.0.0.1:{ours_port}/api/v1/callpower/call", ours)
            wait_ready(f"http://127.0.0.1:{bare_port}/api/v1/callpower/call", bare)
            wrk(bare_port, 50, 2)
            wrk(ours_port, 50, 2)
            for round_number in range(args.rounds):
                for case in ("alone", "backup"):
                    bare_figures = wrk(bare_port, 50, args.seconds)
                    backup = None
                    if case == "backup":
                        started = time.perf_counter()
                        backup = subprocess.Popen(
                            ["nice", "-n", "10", ROLLCALL, "backup", "--keep", "1"],
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    figures = wrk(ours_port, 50, args.seconds)
                    if backup is not None:
                        if backup.wait() != 0:
                            raise SystemExit("the backup failed")
                        durations.append(time.perf_counter() - started)
                    rows[case].append(figures)
                    ratios[case].append(figures["rps"] / bare_figures["rps"])
                    print(
                        f"  round {round_number + 1} {case:6s} rollcall {figures['rps']:7.0f} req/s"
                        f"  p50 {figures['p50']:6.2f} ms  p99 {figures['p99']:6.2f} ms"
                        f"  non-2xx {figures['non_2xx']:.0f}"
                        f"  bare {bare_figures['rps']:7.0f} req/s  ratio {ratios[case][-1]:.2f}"
                    )
        finally:
            stop(ours)
            stop(bare)
        for case in ("alone", "backup"):
            print(
                f"median {case:6s}: ratio {statistics.median(ratios[case]):.2f}"
                f"  p99 {statistics.median(r['p99'] for r in rows[case]):.2f} ms"
                f"  non-2xx {sum(r['non_2xx'] for r in rows[case]):.0f}"
            )
        print(
            f"ratio during a backup / ratio without: "
            f"{statistics.median(ratios['backup']) / statistics.median(ratios['alone']):.2f} (target >= 0.8)"
        )
        (file,) = sorted(backups.glob("rollcall-*.sqlite3"))[-1:]
        print(
            f"backup (copy, integrity_check, counts, SHA-256) under load: median {statistics.median(durations):.1f} s; "
            f"size {file.stat().st_size / 2**20:,.0f} MiB"
        )
        print(f"rollcall backup, no load: {timed([ROLLCALL, 'backup'], env):.1f} s")
        print(f"rollcall backups verify: {timed([ROLLCALL, 'backups', 'verify', str(file)], env):.1f} s")
        print(f"rollcall restore --yes: {timed([ROLLCALL, 'restore', str(file), '--yes'], env):.1f} s")


if __name__ == "__main__":
    main()
