"""The CLI's start (issue #26): how long `rollcall --help`, `rollcall keys show` (the key in the
environment, and the generated one read from the database) and `rollcall posts list` take from
the shell, beside `python -c pass` (the interpreter's own start), medians of `--runs` each.

    python bench/cli.py [--runs 15]

Target (issue #26): `rollcall --help` and `rollcall keys show` under 0.3 s; other commands
with the database work only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from processes import ROLLCALL  # noqa: E402


def median_seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as directory:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLCALL_", "CALLPOWER_"))}
        env = {**base, "ROLLCALL_DATABASE_URL": f"sqlite:///{Path(directory) / 'cli.db'}"}
        subprocess.run([ROLLCALL, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(  # the generated secrets, as `rollcall serve` makes them on first start
            [
                sys.executable,
                "-c",
                "from rollcall.cli.running import _announce_secrets as a; "
                "from rollcall.config import Settings; from rollcall.db import Database; "
                "s = Settings.from_env(); a(s, Database.for_settings(s))",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        keyed = {**env, "CALLPOWER_API_KEY": "k" * 40}
        cases = [
            ("python -c pass", [sys.executable, "-c", "pass"], env),
            ("rollcall --help", [ROLLCALL, "--help"], env),
            ("rollcall keys show (key in the environment)", [ROLLCALL, "keys", "show"], keyed),
            ("rollcall keys show (generated, from the database)", [ROLLCALL, "keys", "show"], env),
            ("rollcall posts list", [ROLLCALL, "posts", "list"], env),
        ]
        print(f"{'command':52} median of {runs}")
        for name, command, environment in cases:
            print(f"{name:52} {median_seconds(command, environment, runs):.3f} s", flush=True)


if __name__ == "__main__":
    main()
