"""Processes for the benchmarks: a free port, start a command, wait for it to answer, stop it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

# The `rollcall` of the interpreter running the benchmark (its venv need not be on PATH).
ROLLCALL = shutil.which("rollcall", path=str(Path(sys.executable).parent)) or shutil.which("rollcall") or "rollcall"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.post(url, content=b"{}", timeout=1, verify=False)  # a benchmark's own certificate
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def start_bare(
    port: int, env: dict[str, str], log: Path, *uvicorn_options: str, app: str = "bare_app:app"
) -> subprocess.Popen[bytes]:
    """The bare endpoint (bench/bare_app.py) on `port`: what rollcall's intake is compared with;
    or another yardstick of this directory (`app`: bench/plain_app.py, the plain implementation)."""
    here = Path(__file__).resolve().parent
    command = [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--no-access-log"]
    return start([*command, "--log-level", "warning", "--app-dir", str(here), *uvicorn_options], env, log)


def children(pid: int) -> list[int]:
    """A process's children, theirs, and so on (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        listed = (task / "children").read_text().split()
        for child in map(int, listed):
            found += [child, *children(child)]
    return found


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=log.parent)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def serving(database_url: str, workdir: Path, **env: str) -> Iterator[str]:
    """`rollcall serve` on the database until the block ends; yields its base URL."""
    port = free_port()
    process = start(
        [ROLLCALL, "serve", "--port", str(port)],
        {**os.environ, "ROLLCALL_DATABASE_URL": database_url, **env},
        workdir / f"serve-{port}.log",
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/api/v1/callpower/call", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
