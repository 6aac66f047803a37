"""Intake and importer benchmark (SQLite, every 200 durable).

Starts `rollcall serve` and a bare endpoint of the same framework and server (bench/bare_app.py),
drives each with wrk on loopback in alternating rounds, and prints requests/s and latency for
(a) 50 connections and (b) one connection sending sequentially (CallPower's pattern), plus the
ratio to the bare endpoint measured in the same run. Then it measures the importer's rate on a
backlog of stored calls.

    python bench/intake.py [--seconds 10] [--rounds 3] [--stored 200000] [--backlog 100000] [--tls]

With `--tls` both servers speak HTTPS with the same certificate (made with trustme, an
intermediate and a leaf, as an ACME client issues them) and wrk connects over TLS.

The intake is measured on a database that already holds `--stored` calls (of the day before),
as a service that has run for a while does: an empty database flatters whatever its indexes
cost (with keys in random order, 300,000 stored calls cut the intake by a third).

Needs `wrk` (apt-get install -y wrk). Medians over the rounds are what docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "bench-callpower-key-0123456789abcdefgh"
sys.path.insert(0, str(HERE))
from processes import ROLLCALL, free_port, start, start_bare, stop, wait_ready  # noqa: E402

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(port: int, connections: int, seconds: int, scheme: str = "http") -> dict[str, float]:
    threads = min(connections, 2)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(HERE / "calls.lua"),
            f"{scheme}://127.0.0.1:{port}",
            "--",
            KEY,
            secrets.token_hex(4),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50": _ms(re.search(r"\s50%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
        "p99": _ms(re.search(r"\s99%\s+(\S+)", output).group(1)),  # type: ignore[union-attr]
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    figures["non_2xx"] = float(errors.group(1)) if errors else 0.0
    if figures["non_2xx"]:  # figures of refused requests mean nothing
        raise SystemExit(f"{figures['non_2xx']:.0f} requests were not answered 2xx:\n{output}")
    if socket_errors:
        print(f"    wrk socket errors: {socket_errors.group(1)}")
    return figures


def intake(args: argparse.Namespace, workdir: Path) -> None:
    env = {
        **os.environ,
        "ROLLCALL_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "CALLPOWER_API_KEY": KEY,
    }
    ours_port, bare_port, plain_port = free_port(), free_port(), free_port()
    subprocess.run([ROLLCALL, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([ROLLCALL, "campaigns", "add", "--title", "Bench"], env=env, check=True, capture_output=True)
    subprocess.run(
        [ROLLCALL, "actions", "add", "--campaign-id", "1", "--name", "Call", "--callpower-campaign-id", "1"],
        env=env,
        check=True,
        capture_output=True,
    )
    if args.stored:
        from data import store_backlog

        print(f"intake: {args.stored} calls of the day before already stored (a service that has run a while)")
        store_backlog(env["ROLLCALL_DATABASE_URL"], args.stored, day="2017-11-06", state="imported")
    tls: list[str] = []
    bare_tls: list[str] = []
    scheme = "http"
    if args.tls:
        cert, key = _certificate(workdir)
        tls, bare_tls, scheme = (
            ["--tls-cert", cert, "--tls-key", key],
            ["--ssl-certfile", cert, "--ssl-keyfile", key],
            "https",
        )
        print("intake over TLS: both servers with the same certificate (chain of two), wrk over https")
    ours = start(
        [ROLLCALL, "serve", "--port", str(ours_port), "--workers", str(args.workers), *tls], env, workdir / "serve.log"
    )
    bare = start_bare(bare_port, env, workdir / "bare.log", *bare_tls)
    # The plain synchronous implementation (bench/plain_app.py): a session, an INSERT and a COMMIT
    # per call, synced (issue #25's yardstick for one call at a time).
    plain_env = {**env, "PLAIN_DATABASE": str(workdir / "plain.db")}
    plain = start_bare(plain_port, plain_env, workdir / "plain.log", *bare_tls, app="plain_app:app")
    try:
        wait_ready(f"{scheme}://127.0.0.1:{ours_port}/api/v1/callpower/call", ours)
        wait_ready(f"{scheme}://127.0.0.1:{bare_port}/api/v1/callpower/call", bare)
        wait_ready(f"{scheme}://127.0.0.1:{plain_port}/api/v1/callpower/call", plain)
        for label, connections in (("50 connections", 50), ("1 connection, sequential", 1)):
            print(f"\n{label}: {args.rounds} rounds of {args.seconds}s each, alternating")
            results: dict[str, list[dict[str, float]]] = {"bare": [], "rollcall": [], "plain": []}
            servers = (("bare", bare_port), ("rollcall", ours_port), ("plain", plain_port))
            for _, port in servers:  # warm up each
                wrk(port, connections, 2, scheme)
            for round_number in range(args.rounds):
                for name, port in servers:
                    figures = wrk(port, connections, args.seconds, scheme)
                    results[name].append(figures)
                    print(
                        f"  round {round_number + 1} {name:8s} {figures['rps']:8.0f} req/s"
                        f"  p50 {figures['p50']:7.2f} ms  p99 {figures['p99']:7.2f} ms"
                        f"  non-2xx {figures['non_2xx']:.0f}"
                    )
            ratios = [o["rps"] / b["rps"] for o, b in zip(results["rollcall"], results["bare"], strict=True)]
            for name in ("bare", "rollcall", "plain"):
                rounds = results[name]
                print(
                    f"  median {name:8s} {statistics.median(r['rps'] for r in rounds):8.0f} req/s"
                    f"  p50 {statistics.median(r['p50'] for r in rounds):7.2f} ms"
                    f"  p99 {statistics.median(r['p99'] for r in rounds):7.2f} ms"
                )
            print(
                f"  median ratio rollcall/bare: {statistics.median(ratios):.2f}  (rounds: "
                + ", ".join(f"{r:.2f}" for r in ratios)
                + ")"
            )
            p50s = [o["p50"] / p["p50"] for o, p in zip(results["rollcall"], results["plain"], strict=True)]
            print(
                f"  median p50 rollcall/plain: {statistics.median(p50s):.2f}  (rounds: "
                + ", ".join(f"{r:.2f}" for r in p50s)
                + ")"
            )
    finally:
        stop(ours)
        stop(bare)
        stop(plain)


def _certificate(workdir: Path) -> tuple[str, str]:
    import trustme

    leaf = trustme.CA().create_child_ca().issue_cert("127.0.0.1", "localhost")
    cert, key = workdir / "fullchain.pem", workdir / "privkey.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return str(cert), str(key)


def importer(args: argparse.Namespace, workdir: Path) -> None:
    """Store a backlog directly (as the intake would), then time the importer emptying it."""
    from data import store_backlog, waiting

    from rollcall.activity import service as activity
    from rollcall.calls import service as operations
    from rollcall.calls import statistics
    from rollcall.db import Database, migrate

    url = f"sqlite:///{workdir / 'backlog.db'}"
    database = Database(url)
    migrate(database)
    with database.writing() as session:
        campaign = activity.create_campaign(session, internal_title="Backlog")
        action = activity.create_action(session, campaign_id=campaign.id, name="Call")
        operations.map_campaign(session, action.id, 1)
    print(f"\nimporter: storing a backlog of {args.backlog} calls ...")
    store_backlog(url, args.backlog)
    database.dispose()
    env = {**os.environ, "ROLLCALL_DATABASE_URL": url}
    worker = start([ROLLCALL, "worker"], env, workdir / "worker.log")
    started = time.perf_counter()
    try:
        while waiting(url):
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        stop(worker)
    database = Database(url)
    with database.reading() as session:
        counts = statistics.count_calls_by_state(session)
    database.dispose()
    imported = counts["imported"] + counts["discarded"]
    print(f"  rollcall worker imported {imported} calls in {seconds:.1f} s: {imported / seconds:.0f} calls/s")
    print(f"  states afterwards: {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument(
        "--stored", type=int, default=200_000, help="calls already in the database when the intake is measured"
    )
    parser.add_argument("--workers", type=int, default=1, help="API processes for rollcall (the bare one has one)")
    parser.add_argument("--tls", action="store_true", help="both servers over HTTPS with the same certificate")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--skip-importer", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(time.strftime("date: %Y-%m-%d %H:%M %Z"))
    with tempfile.TemporaryDirectory(prefix="rollcall-bench-") as directory:
        workdir = Path(directory)
        if not args.skip_intake:
            intake(args, workdir)
        if not args.skip_importer:
            importer(args, workdir)


if __name__ == "__main__":
    main()
