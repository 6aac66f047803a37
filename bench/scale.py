"""Every console page and every API list on a large database, and the posts CSV, by server time.

    python bench/scale.py DATABASE [--rounds 15] [--csv-rounds 3] [--skip-pages]

DATABASE is a SQLite file or a PostgreSQL URL that `bench/data.py` built (1,000,000 or
10,000,000 posts). Starts `rollcall serve` on it, signs in to the console, and fetches each page
and list one request at a time; the time printed is the server's own (`Server-Timing`: request in
to response out). Then streams one campaign's posts CSV and prints its rows per second and the
serving process's memory before and after (flat memory: the CSV is written as it is read).
Targets (issue "10 million calls"): every page and list under 30 ms median.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import children, serving  # noqa: E402

TOKEN = "bench-staff-token-0123456789abcdefghi"


def server_ms(answer: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", answer.headers.get("server-timing", ""))
    if not match:
        raise SystemExit(f"no Server-Timing header on {answer.url}: is this rollcall?")
    return float(match.group(1))


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the writer process, the workers)."""
    total = 0
    for candidate in [pid, *children(pid)]:
        try:
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return total / 1024


def serve_pid(port: str) -> int:
    """The `rollcall serve` listening on this port (its command line names it)."""
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            try:
                command = (process / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in command and port.encode() in command:
                return int(process.name)
    raise SystemExit("rollcall serve not found")


def sign_in(client: httpx.Client) -> None:
    form = client.get("/console/sign-in").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    client.post("/console/sign-in", data={"csrf_token": csrf, "token": TOKEN, "next": "/console/"})


def targets(client: httpx.Client) -> dict[str, tuple[str, dict[str, str | int], dict[str, str]]]:
    """Every console page and API list (name: path, query, headers), with ids found in the data.
    The client must be signed in to the console."""
    staff = {"Authorization": f"Bearer {TOKEN}"}
    posts = client.get("/api/v3/posts", params={"filter[campaign_id]": 7, "limit": 100}, headers=staff).json()
    post = posts["data"][0]
    deep = posts["meta"]["cursor"]["next"]
    for _ in range(20):  # a page further back
        deep = client.get(
            "/api/v3/posts", params={"filter[campaign_id]": 7, "limit": 100, "cursor": deep}, headers=staff
        ).json()["meta"]["cursor"]["next"]
    user = post["northstar_id"]
    mobile = client.get(f"/api/v3/users/{user}", headers=staff).json()["data"]["mobile"]
    pages = {
        "console: overview": "/console/",
        "console: CallPower campaigns": "/console/campaigns",
        "console: calls": "/console/calls",
        "console: calls, failed": "/console/calls?state=failed",
        "console: calls, unmapped": "/console/calls?state=unmapped",
        "console: calls, rejected": "/console/calls?state=rejected",
        "console: calls, one campaign": "/console/calls?campaign=5",
        "console: calls, one mobile": f"/console/calls?mobile={mobile}",
        "console: one call": f"/console/calls/{post['call_id']}",
        "console: posts of a campaign": "/console/posts?campaign_id=7",
        "console: one post": f"/console/posts/{post['id']}",
        "console: one user": f"/console/users/{user}",
        "console: one signup": f"/console/signups/{post['signup_id']}",
        "console: audit log": "/console/audit",
        "console: webhooks": "/console/webhooks",
    }
    lists = {
        "API: posts": ("/api/v3/posts", {}),
        "API: posts of a campaign": ("/api/v3/posts", {"filter[campaign_id]": 7}),
        "API: posts, 21st page": ("/api/v3/posts", {"filter[campaign_id]": 7, "cursor": deep}),
        "API: posts of an action": ("/api/v3/posts", {"filter[action_id]": 8}),
        "API: posts of a member": ("/api/v3/posts", {"filter[northstar_id]": user}),
        "API: signups": ("/api/v3/signups", {}),
        "API: signups of a campaign": ("/api/v3/signups", {"filter[campaign_id]": 7}),
        "API: users": ("/api/v3/users", {}),
        "API: campaigns": ("/api/v3/campaigns", {}),
        "API: actions": ("/api/v3/actions", {}),
        "API: calls": ("/api/v3/callpower/calls", {}),
        "API: calls, failed": ("/api/v3/callpower/calls", {"filter[state]": "failed"}),
        "API: calls, unmapped": ("/api/v3/callpower/calls", {"filter[state]": "unmapped"}),
        "API: calls of a CallPower campaign": ("/api/v3/callpower/calls", {"filter[callpower_campaign_id]": 5}),
        "API: CallPower campaigns": ("/api/v3/callpower/campaigns", {}),
        "API: events": ("/api/v3/events", {}),
        "API: webhooks": ("/api/v3/webhooks", {}),
    }
    api = {name: (path, {"limit": 100, **params}, staff) for name, (path, params) in lists.items()}
    return {**{name: (path, {}, {}) for name, path in pages.items()}, **api}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="a SQLite file or PostgreSQL URL built by bench/data.py")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--csv-rounds", type=int, default=3, help="downloads of the CSV (the median is printed)")
    parser.add_argument("--skip-pages", action="store_true", help="only the CSV")
    args = parser.parse_args()
    url = args.database if "://" in args.database else f"sqlite:///{Path(args.database).resolve()}"
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}", f"database: {url.split('@')[-1]}")
    with (
        tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory,
        serving(url, Path(directory), ROLLCALL_ADMIN_TOKEN=TOKEN) as base,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        sign_in(client)
        if not args.skip_pages:
            pages(client, args.rounds)
        csv(client, base, args.csv_rounds)


def pages(client: httpx.Client, rounds: int) -> None:
    """Each page and list: the median of its server times."""
    requests = targets(client)
    print(f"\nserver time (Server-Timing) over {rounds} rounds, limit 100 for API lists:")
    worst = 0.0
    for name, (path, query, headers) in requests.items():
        first = client.get(path, params=query, headers=headers)
        assert first.status_code == 200, (path, first.status_code, first.text[:200])
        times = [server_ms(client.get(path, params=query, headers=headers)) for _ in range(rounds)]
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"  {name:36s} median {median:7.1f} ms   max {max(times):7.1f} ms   first {server_ms(first):7.1f} ms")
    print(f"  slowest median: {worst:.1f} ms (target < 30 ms)")


def csv(client: httpx.Client, base: str, rounds: int) -> None:
    """One campaign's posts CSV, `rounds` times: rows per second, and the memory while it streams."""
    pid = serve_pid(base.rsplit(":", 1)[1])
    rates = []
    for _ in range(rounds):
        rows, seconds, before, peak = csv_once(client, pid)
        rates.append(rows / seconds)
        print(
            f"\nposts CSV of one campaign: {rows} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s; "
            f"serving processes' memory {before:.0f} MB before, peak {peak:.0f} MB"
        )
    print(f"posts CSV: median {statistics.median(rates):,.0f} rows/s over {rounds} (target >= 50,000)")


def csv_once(client: httpx.Client, pid: int) -> tuple[int, float, float, float]:
    before = rss_mb(pid)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    rows = 0
    with client.stream("GET", "/console/campaigns/7/posts.csv") as answer:
        for chunk in answer.iter_bytes():
            rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    return rows - 1, seconds, before, peak[0]  # (the header is not a post)


if __name__ == "__main__":
    main()
