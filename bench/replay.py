"""A history replayed (issue #25): `--calls` calls sent to `rollcall serve` by 50 concurrent
clients as fast as it answers, then the time until every one of them is a post.

    python bench/replay.py [--calls 1000000] [--connections 50] [--stored 0]

Starts `rollcall serve` (SQLite, every 200 durable) on a fresh database with the campaign mapped
(plus `--stored` imported calls of the day before, for a database that has run a while), sends
the calls with wrk (bench/replay.lua: calls.lua's calls from 20,000 members, a third of them
busy; each of wrk's threads stops once its share is answered, and wrk is stopped once all are
stored), and then waits for the importer
(in serve's writer process, as in production) to empty the queue. It prints the intake's phase
(requests/s, p50/p99), the import's tail, the total, and checks that every stored call is a
post. Target (issue #25): 1,000,000 calls in under 5 minutes end to end. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from intake import KEY, _ms  # noqa: E402
from processes import ROLLCALL, free_port, start, stop, wait_ready  # noqa: E402


def calls_stored(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return int(connection.execute("SELECT max(id) FROM calls").fetchone()[0] or 0)


def waiting(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return int(connection.execute("SELECT count(*) FROM calls WHERE state IN ('received', 'failed')").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--stored", type=int, default=0, help="imported calls in the database before")
    args = parser.parse_args()
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"))
    print(f"load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="rollcall-replay-") as directory:
        workdir = Path(directory)
        path = workdir / "replay.db"
        env = {**os.environ, "ROLLCALL_DATABASE_URL": f"sqlite:///{path}", "CALLPOWER_API_KEY": KEY}
        for command in (
            ["migrate"],
            ["campaigns", "add", "--title", "Replay"],
            ["actions", "add", "--campaign-id", "1", "--name", "Call", "--callpower-campaign-id", "1"],
        ):
            subprocess.run([ROLLCALL, *command], env=env, check=True, capture_output=True)
        if args.stored:
            from data import store_backlog

            store_backlog(env["ROLLCALL_DATABASE_URL"], args.stored, day="2017-11-06", state="imported")
        port = free_port()
        serve = start([ROLLCALL, "serve", "--port", str(port)], env, workdir / "serve.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}/api/v1/callpower/call", serve)
            threads = 2
            share = -(-args.calls // threads)
            print(f"replaying {share * threads} calls over {args.connections} connections ...", flush=True)
            started = time.perf_counter()
            # wrk runs for its duration whatever its threads do: it is stopped (SIGINT, after which
            # it prints its figures) once the whole history is stored.
            sender = subprocess.Popen(
                [
                    "wrk",
                    f"-t{threads}",
                    f"-c{args.connections}",
                    "-d3600s",
                    "--latency",
                    "-s",
                    "replay.lua",
                    f"http://127.0.0.1:{port}",
                    "--",
                    KEY,
                    secrets.token_hex(4),
                    str(share),
                ],
                stdout=subprocess.PIPE,
                text=True,
                cwd=HERE,
            )
            while calls_stored(path) < args.stored + share * threads and sender.poll() is None:
                time.sleep(0.2)
            sent = time.perf_counter() - started
            sender.send_signal(signal.SIGINT)
            output = sender.communicate(timeout=60)[0]
            if re.search(r"Non-2xx or 3xx responses: (\d+)", output):
                raise SystemExit(f"answers that were not 2xx:\n{output}")
            requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
            p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
            p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
            left = waiting(path)
            print(
                f"  intake: {requests} answered in {sent:.1f} s ({requests / sent:.0f} req/s, p50 {p50:.2f} ms,"
                f" p99 {p99:.2f} ms); {left} waiting for the importer then",
                flush=True,
            )
            while left:
                time.sleep(0.5)
                left = waiting(path)
            total = time.perf_counter() - started
        finally:
            stop(serve)
        with sqlite3.connect(path) as connection:
            stored = connection.execute("SELECT count(*) FROM calls").fetchone()[0] - args.stored
            posts = connection.execute("SELECT count(*) FROM calls WHERE post_id IS NOT NULL").fetchone()[0]
            states = dict(connection.execute("SELECT state, count(*) FROM calls GROUP BY state").fetchall())
    print(f"  imported the rest in {total - sent:.1f} s after the last answer")
    print(f"  end to end: {total:.1f} s ({total / 60:.2f} min) for {stored} calls: {stored / total:.0f} calls/s")
    print(f"  calls by state: {states}; posts made: {posts - args.stored}")
    if posts - args.stored != stored or set(states) != {"imported"}:
        raise SystemExit("not every call became a post")


if __name__ == "__main__":
    main()
