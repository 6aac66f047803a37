"""Console page times on a large SQLite database (1,000,000 posts, 100 CallPower campaigns).

    python bench/console.py [--posts 1000000] [--rounds 20] [--keep PATH]

Builds the database with bench/data.py (or reuses `--keep PATH`), starts `rollcall serve`, signs
in, and fetches every console page one at a time. The time printed is the server's own, from the
`Server-Timing` header it sends (request in to response out, without the network). The first
fetch of each page is shown apart: it fills the overview's cache of finished days.
"""

from __future__ import annotations

import argparse
import os
import re
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


def server_ms(answer: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", answer.headers.get("server-timing", ""))
    if not match:
        raise SystemExit("no Server-Timing header: is this rollcall?")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build the database here (or reuse it if it exists)")
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        path = args.keep or Path(directory) / "big.db"
        if not path.exists():
            build(path, args.posts, args.campaigns)
        with (
            serving(f"sqlite:///{path}", Path(directory), ROLLCALL_ADMIN_TOKEN=TOKEN) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            form = client.get("/console/sign-in").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/console/sign-in", data={"csrf_token": csrf, "token": TOKEN, "next": "/console/"})
            with_post = client.get("/console/posts").text
            post = re.search(r'href="/console/posts/(\d+)"', with_post).group(1)  # type: ignore[union-attr]
            user = re.search(r'href="/console/users/([0-9a-f]+)"', with_post).group(1)  # type: ignore[union-attr]
            pages = {
                "overview /console/": "/console/",
                "CallPower campaigns": "/console/campaigns",
                "calls": "/console/calls",
                "calls, state=failed": "/console/calls?state=failed",
                "calls, state=unmapped": "/console/calls?state=unmapped",
                "calls, one CallPower campaign": "/console/calls?campaign=5",
                "calls, one mobile": "/console/calls?mobile=5550000123",
                "one call": "/console/calls/1000",
                "posts of a campaign": "/console/posts?campaign_id=7",
                "one post": f"/console/posts/{post}",
                "one user": f"/console/users/{user}",
            }
            print(f"\nconsole pages on {args.posts} posts, server time (Server-Timing), {args.rounds} rounds:")
            for name, url in pages.items():
                first = server_ms(client.get(url))
                times = []
                for _ in range(args.rounds):
                    answer = client.get(url)
                    assert answer.status_code == 200, (url, answer.status_code)
                    times.append(server_ms(answer))
                print(
                    f"  {name:32s} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms"
                    f"   first {first:7.1f} ms"
                )
            started = time.perf_counter()
            answer = client.get("/console/campaigns/7/posts.csv")
            rows = answer.text.count("\n") - 1
            print(f"  CSV of a campaign's posts: {rows} rows in {(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
