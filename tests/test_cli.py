"""The `rollcall` command as a real process: listing, importing files, errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rollcall.calls.models import CallState
from rollcall.config import Settings
from rollcall.db import Database
from tests.helpers import SEED_CALL, calls_in, import_all, map_seed_campaign, store


def test_campaign_and_action_round_trip(cli: Any) -> None:
    assert cli("campaigns", "add", "--title", "Defend Dreamers").stdout.strip() == "campaign 1 added"
    added = cli("actions", "add", "--campaign-id", "1", "--name", "Call Congress", "--callpower-campaign-id", "9")
    assert added.stdout.strip() == "action 1 added"

    campaigns = json.loads(cli("campaigns", "list", "--json").stdout)
    actions = json.loads(cli("actions", "list", "--json").stdout)

    assert [c["internal_title"] for c in campaigns] == ["Defend Dreamers"]
    assert [(a["name"], a["post_type"], a["callpower_campaign_id"]) for a in actions] == [
        ("Call Congress", "phone-call", 9)
    ]
    table = cli("actions", "list").stdout
    assert "Call Congress" in table and "callpower_campaign_id" in table


def test_read_commands_print_json(cli: Any, database: Database, settings: Settings) -> None:
    map_seed_campaign(database)
    store(database, SEED_CALL)
    import_all(database, settings)

    posts = json.loads(cli("posts", "list", "--json").stdout)
    users = json.loads(cli("users", "list", "--mobile", "(555) 123-1234", "--json").stdout)
    signups = json.loads(cli("signups", "list", "--json").stdout)
    stored = json.loads(cli("calls", "list", "--state", "imported", "--json").stdout)

    assert [(p["status"], p["type"], p["details"]["campaign_target_name"]) for p in posts] == [
        ("accepted", "phone-call", "Mickey Mouse")
    ]
    assert [u["mobile"] for u in users] == ["+15551231234"]
    assert [(s["northstar_id"], s["quantity"]) for s in signups] == [(users[0]["id"], 1)]
    assert [(c["state"], c["post_id"]) for c in stored] == [("imported", posts[0]["id"])]
    assert json.loads(cli("posts", "list", "--status", "incomplete", "--json").stdout) == []


def test_import_file_of_json_lines(cli: Any, database: Database, tmp_path: Path) -> None:
    lines = [
        json.dumps(SEED_CALL),
        json.dumps({**SEED_CALL, "call_timestamp": "2017-11-07T18:54:10.829655"}),  # the same call again
        json.dumps({**SEED_CALL, "campaign_target_name": "Donald Duck"}),
        json.dumps({**SEED_CALL, "mobile": ""}),
        "{broken",
        "",
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = cli("calls", "import", str(path))

    assert result.stdout.strip() == "stored=2 duplicate=1 rejected=2"
    assert "line 4: rejected: The mobile field is required." in result.stderr
    assert "line 5: rejected: The line is not valid JSON." in result.stderr
    assert sorted(c.state for c in calls_in(database)) == ["received", "received", "rejected", "rejected"]
    # Importing the same file again stores nothing new.
    again = cli("calls", "import", str(path))
    assert again.stdout.strip() == "stored=0 duplicate=3 rejected=2"


def test_import_csv_file(cli: Any, database: Database, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    header = ",".join(SEED_CALL)
    row = ",".join(str(v) for v in SEED_CALL.values())
    blank_district = ",".join("" if k == "campaign_target_district" else str(v) for k, v in SEED_CALL.items())
    path.write_text(f"{header}\n{row}\n{blank_district}\n")

    result = cli("calls", "import", str(path))

    assert result.stdout.strip() == "stored=2 duplicate=0 rejected=0"
    records = [c.record for c in calls_in(database)]
    assert [r["campaign_target_district"] for r in records] == ["FL-7", None]
    assert records[0]["call_duration"] == 36


def test_user_mistakes_print_one_line_and_fail(cli: Any, tmp_path: Path) -> None:
    cases = [
        (("actions", "map", "42", "--callpower-campaign-id", "3"), "error: No action with id 42."),
        (("actions", "add", "--campaign-id", "9", "--name", "x"), "error: No campaign with id 9."),
        (("calls", "retry", "5"), "error: No call with id 5."),
        (("calls", "list", "--state", "lost"), "error: unknown state 'lost'; one of: received, imported,"),
        (("calls", "import", str(tmp_path / "nope.jsonl")), "error: no file at"),
        (("users", "list", "--mobile", "12"), "error: '12' is not a possible phone number"),
        (("campaigns", "add", "--title", "  "), "error: The internal title field is required."),
        (("calls", "retry"), "error: give either a call id or --state, not both"),
        (("calls", "retry", "--state", "imported"), "error: Only failed, dead, unmapped calls can be retried"),
    ]
    for args, message in cases:
        result = cli(*args, check=False)
        assert result.returncode == 1, args
        assert result.stderr.startswith(message), (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "ROLLCALL_DATABASE_URL": f"sqlite:///{tmp_path / 'absent.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "rollcall", "posts", "list"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: no database at ")
    assert "rollcall migrate" in result.stderr
    assert not (tmp_path / "absent.db").exists()


def test_retry_by_state_sends_calls_back(cli: Any, database: Database) -> None:
    store(database, SEED_CALL, {**SEED_CALL, "call_duration": 1})
    with database.writing() as session:
        session.execute(sa.text("UPDATE calls SET state = 'dead'"))
    result = cli("calls", "retry", "--state", "dead")
    assert result.stdout.strip() == "2 calls sent back to the importer"
    assert [c.state for c in calls_in(database)] == [CallState.RECEIVED, CallState.RECEIVED]


def test_help_and_a_mistyped_option_load_no_database_code() -> None:
    """`rollcall --help` answers without importing SQLAlchemy, the models or the services (what
    made every command take a second to start); a command loads them when it runs."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from rollcall.cli import main\n"
        "for argv in (['--help'], ['posts', 'list', '--help'], ['report', '--by', 'nonsense']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = [n for n in ('sqlalchemy', 'rollcall.db', 'rollcall.activity.models', 'rollcall.reports.service')\n"
        "          if n in sys.modules and type(sys.modules[n]).__name__ != '_LazyModule']\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_keys_show_prints_the_generated_secrets_without_loading_sqlalchemy(
    database: Database, settings: Settings
) -> None:
    """`rollcall keys show` reads the generated key with the database's own driver (`glance`): the
    key and the staff token as stored, and neither SQLAlchemy nor the models loaded (they took
    most of a second to import)."""
    from rollcall.credentials import ADMIN_TOKEN, CALLPOWER_KEY, ensure_secret

    key, _ = ensure_secret(database, CALLPOWER_KEY)
    token, _ = ensure_secret(database, ADMIN_TOKEN)
    probe = (
        "import sys\n"
        "from rollcall.cli import main\n"
        "for argv in (['keys', 'show'], ['keys', 'show', '--admin']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert not stop.code, stop.code\n"
        "print([n for n in ('sqlalchemy', 'alembic', 'rollcall.db', 'rollcall.credentials')\n"
        "       if n in sys.modules and type(sys.modules[n]).__name__ != '_LazyModule'])\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLCALL_", "CALLPOWER_"))}
    environment["ROLLCALL_DATABASE_URL"] = settings.database_url
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [key, token, "[]"]


def test_keys_show_refuses_a_database_whose_schema_is_not_current(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:  # a database of an older release
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('0001')")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLCALL_", "CALLPOWER_"))}
    for url, message in (
        (f"sqlite:///{path}", "error: the database schema is not current: run `rollcall migrate`"),
        (f"sqlite:///{tmp_path / 'absent.db'}", f"error: no database at {tmp_path / 'absent.db'}"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "rollcall", "keys", "show"],
            capture_output=True,
            text=True,
            env={**environment, "ROLLCALL_DATABASE_URL": url},
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.startswith(message), result.stderr
    assert not (tmp_path / "absent.db").exists()
