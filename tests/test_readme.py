"""The README's examples, run as written (only the port differs) against a fresh database and a
real `rollcall serve` that generated its own key and token, as a newcomer's does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_for

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def block_after(heading: str, containing: str = "") -> str:
    """The first ```sh block after a heading (that contains `containing`)."""
    section = README[README.index(heading) :]
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL):
        if containing in block:
            return str(block)
    raise AssertionError(f"no sh block after {heading!r} with {containing!r}")


@pytest.mark.processes
def test_the_try_it_example_and_the_staff_api_example_run_as_written(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("the README's examples use curl")
    port = free_port()
    bin_directory = str(Path(sys.executable).parent)  # this interpreter's `rollcall`
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROLLCALL_", "CALLPOWER_")) and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    environment["PATH"] = f"{bin_directory}:{environment.get('PATH', '')}"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        ["rollcall", "serve", "--port", str(port)], cwd=tmp_path, env=environment, stdout=log, stderr=log
    )
    try:

        def ready() -> bool:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60)
        script = "\n".join(
            (
                block_after("## Try it", "rollcall campaigns add"),
                block_after("## Staff API", "rollcall keys show --admin"),
            )
        ).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert '{"success":{"code":200,"message":"Received CallPower payload."}}' in output
    assert re.search(r"^1\s+phone-call\s+accepted\s+1\s+1\s+[0-9a-f]{24}\s+2017-11-07T18:54:10.829655Z$", output, re.M)
    assert '"callpower_campaign_id":7' in output.replace(" ", "")
