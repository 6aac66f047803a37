"""Campaign results on a large database: every grouping of the report, and the console's Results
page, for one campaign of about a million posts, over its last 30 days and over its whole year.

    python bench/reports.py [--posts 1000000] [--big-campaign-posts 1000000] [--rounds 20]
                            [--keep PATH | --postgres ADMIN_URL [--database URL]]

Builds the database with bench/data.py (a year of calls, realistic targets and statuses,
campaign 2 with about `--big-campaign-posts` of the posts; on SQLite at `--keep PATH`, reused if
it exists; on PostgreSQL a fresh database on the server `--postgres` points at, or `--database`,
one built before), starts `rollcall serve` on it and fetches each report one at a time. The time
printed is the server's own (`Server-Timing`: request in to response out), median and 95th
percentile of `--rounds` fetches after one to warm up.

Targets (issue #23): each grouping of one campaign's last 30 days under 50 ms median, the whole
year of the 1,000,000-post campaign under 250 ms, 1M to 10M posts at most 1.5x slower; the
console's Results page likewise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console import server_ms  # noqa: E402
from data import build, scalar  # noqa: E402
from postgres import drop_database  # noqa: E402
from processes import serving  # noqa: E402

from rollcall.db import normalize_url  # noqa: E402

TOKEN = "bench-staff-token-0123456789abcdefghi"
GROUPINGS = ("day", "hour", "weekday_hour", "target", "state", "district", "action", "campaign")
CAMPAIGN = 2  # bench/data.py's big campaign


def empty_database(admin_url: str) -> str:
    """A new, empty database on the server (bench/data.py migrates and fills it)."""
    name = f"rollcall_reports_{secrets.token_hex(4)}"
    engine = sa.create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return sa.engine.make_url(normalize_url(admin_url)).set(database=name).render_as_string(hide_password=False)


def measure(client: httpx.Client, url: str, rounds: int) -> tuple[float, float]:
    answer = client.get(url)  # warm up
    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
    times = []
    for _ in range(rounds):
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        times.append(server_ms(answer))
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def run(database_url: str, workdir: Path, rounds: int) -> None:
    posts = int(scalar(database_url, "SELECT count(*) FROM posts"))  # (a reused file's, not --posts)
    with (
        serving(database_url, workdir, ROLLCALL_ADMIN_TOKEN=TOKEN) as url,
        httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        form = client.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        client.post("/console/sign-in", data={"csrf_token": csrf, "token": TOKEN, "next": "/console/"})
        today = dt.datetime.now(dt.UTC).date()
        year = (today - dt.timedelta(days=364)).isoformat()
        whole_year = f"filter[date][gte]={year}&filter[date][lte]={today.isoformat()}"
        probe = client.get(f"/api/v3/reports/calls?filter[campaign_id]={CAMPAIGN}&{whole_year}").json()
        totals, kind = probe["meta"]["totals"], database_url.split(":")[0]
        print(
            f"\ncampaign {CAMPAIGN}: {totals['calls']:,} posts in the year, {totals['callers']:,} callers; "
            f"database of {posts:,} posts ({kind})"
        )
        print(f"server time (Server-Timing), {rounds} rounds, ms: median / p95")
        rows = []
        for grouping in GROUPINGS:
            base = f"/api/v3/reports/calls?filter[campaign_id]={CAMPAIGN}&group_by={grouping}"
            month = measure(client, base, rounds)
            whole = measure(client, f"{base}&{whole_year}", rounds)
            rows.append((f"API group_by={grouping}", month, whole))
        for name, path in (
            ("console Results, the campaign", f"/console/results/{CAMPAIGN}"),
            ("console Results, all campaigns", "/console/results"),
        ):
            month = measure(client, path, rounds)
            whole = measure(client, f"{path}?from={year}&to={today.isoformat()}", rounds)
            rows.append((name, month, whole))
        print(f"  {'':36s} {'last 30 days':>18s} {'whole year':>18s}")
        for name, month, whole in rows:
            print(f"  {name:36s} {month[0]:8.1f} / {month[1]:7.1f} {whole[0]:8.1f} / {whole[1]:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--big-campaign-posts", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="SQLite: build the database here (or reuse it if it exists)")
    parser.add_argument("--postgres", help="PostgreSQL: a server URL to make a fresh database on")
    parser.add_argument("--database", help="PostgreSQL: a database bench/data.py built before (kept)")
    args = parser.parse_args()
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"), f"cores: {os.cpu_count()}")
    big = min(args.big_campaign_posts, args.posts)
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        if args.database:
            run(args.database, Path(directory), args.rounds)
        elif args.postgres:
            url = empty_database(args.postgres)
            try:
                build(url, args.posts, args.campaigns, days=365, big_campaign_posts=big)
                run(url, Path(directory), args.rounds)
            finally:
                drop_database(args.postgres, url)
        else:
            path = args.keep or Path(directory) / "reports.db"
            if not path.exists():
                build(path, args.posts, args.campaigns, days=365, big_campaign_posts=big)
            run(f"sqlite:///{path}", Path(directory), args.rounds)


if __name__ == "__main__":
    main()
