"""The repository as a newcomer meets it: what `rollcall serve` leaves beside its database is not
shown as a change to commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "left_behind",
    [
        "rollcall.db",
        "rollcall.db-wal",
        "rollcall.db-shm",
        "rollcall.db.write-lock",
        "rollcall.db.in-use",
        "rollcall.db.before-restore-20261206180000",
    ],
)
def test_what_serve_leaves_beside_its_database_is_ignored(left_behind: str) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    checked = subprocess.run(["git", "check-ignore", "-q", left_behind], cwd=ROOT, check=False)
    assert checked.returncode == 0, f"{left_behind} would show as untracked"
