"""Read benchmark of the staff API on a large SQLite database.

    python bench/api.py [--posts 1000000] [--requests 300] [--keep PATH]

Builds a database with bench/data.py (1,000,000 posts over 100 campaigns by default), starts
`rollcall serve` on it and times, one request at a time, `GET /api/v3/posts?filter[campaign_id]=X
&limit=100` for random campaigns and for following pages (`cursor`), plus a few other lists.
Prints the median and 95th percentile per request; the target is a median under 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import build  # noqa: E402
from processes import serving  # noqa: E402

TOKEN = "bench-staff-token-0123456789abcdefghi"


def timed(client: httpx.Client, path: str, params: dict[str, str | int]) -> tuple[float, dict]:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    return elapsed, answer.json()


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    p95 = times[int(len(times) * 0.95) - 1]
    print(f"  {name:58s} median {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms   (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="build the database here (or reuse it if it exists)")
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        path = args.keep or Path(directory) / "big.db"
        if not path.exists():
            build(path, args.posts, args.campaigns)
        with serving(f"sqlite:///{path}", Path(directory), ROLLCALL_ADMIN_TOKEN=TOKEN) as url:
            rng = random.Random(5)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
                for _ in range(20):  # warm up
                    timed(client, "/api/v3/posts", {"limit": 100})
                first, deeper = [], []
                for _ in range(args.requests):
                    campaign = rng.randrange(args.campaigns) + 1
                    elapsed, body = timed(client, "/api/v3/posts", {"filter[campaign_id]": campaign, "limit": 100})
                    first.append(elapsed)
                    cursor = body["meta"]["cursor"]["next"]
                    for _ in range(3):
                        if not cursor:
                            break
                        params = {"filter[campaign_id]": campaign, "limit": 100, "cursor": cursor}
                        elapsed, body = timed(client, "/api/v3/posts", params)
                        deeper.append(elapsed)
                        cursor = body["meta"]["cursor"]["next"]
                print(f"\nGET /api/v3/posts on {args.posts} posts (SQLite), one request at a time:")
                report("filter[campaign_id]=X&limit=100, first page", first)
                report("same, following pages (cursor)", deeper)
                others = {
                    "/api/v3/posts?limit=100": {"limit": 100},
                    "/api/v3/posts?filter[status]=accepted&limit=100": {"filter[status]": "accepted", "limit": 100},
                    "/api/v3/signups?filter[campaign_id]=X&limit=100": None,
                    "/api/v3/callpower/calls?filter[state]=failed&limit=100": {"filter[state]": "failed", "limit": 100},
                    "/api/v3/callpower/campaigns?limit=100": {"limit": 100},
                }
                for name, params in others.items():
                    times = []
                    for _ in range(max(20, args.requests // 5)):
                        query = params or {"filter[campaign_id]": rng.randrange(args.campaigns) + 1, "limit": 100}
                        times.append(timed(client, name.split("?")[0], query)[0])
                    report(name, times)


if __name__ == "__main__":
    main()
