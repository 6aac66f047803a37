"""Backups (#24): taken while calls arrive, verified, restored; a member erased after a backup is
erased again by the restore (and by `rollcall serve` after a restore by hand); restores refused
while the service runs and for damaged files; the schedule; what the console says."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from rollcall.activity.models import User
from rollcall.backups import schedule, snapshots
from rollcall.calls import statistics
from rollcall.calls.models import Call, CallState
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.members import ledger
from rollcall.times import parse_timestamp
from tests.helpers import (
    ADMIN_TOKEN,
    LEGACY_PATH,
    RunningApp,
    map_seed_campaign,
    serve_process,
    sign_in_over_http,
    wait_for,
)
from tests.test_members import KEY, MEMBER, NATIONAL, OTHER, STAFF, call, member_with_history, posts_of, user_of

Run = Callable[..., subprocess.CompletedProcess[str]]


def sqlite_file(settings: Settings) -> Path | None:
    if not settings.database_url.startswith("sqlite"):
        return None
    return Path(settings.database_url.removeprefix("sqlite:///"))


def calls_of(url: str) -> dict[str, str]:
    """Mobile → state of every stored call of a database."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Call.mobile, Call.state)).all()
    engine.dispose()
    return {str(mobile): state for mobile, state in rows if mobile}


def drop_kept_aside(url: str) -> int:
    """Drop the PostgreSQL databases a restore kept aside (the test's own is dropped after it)."""
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        aside = connection.scalars(
            sa.text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
            {"pattern": f"{str(name)[:40]}_before_restore_%"},
        ).all()
        for found in aside:
            connection.exec_driver_sql(f'DROP DATABASE "{found}" WITH (FORCE)')
    admin.dispose()
    return len(aside)


def database_url_of(verified: snapshots.Verified) -> str:
    return verified.copy if verified.copy.startswith("postgresql") else f"sqlite:///{verified.copy}"


def test_a_backup_taken_while_calls_arrive_holds_every_call_answered_before_it(
    app: RunningApp, database: Database, settings: Settings, tmp_path: Path
) -> None:
    map_seed_campaign(database, 1)
    answered: list[tuple[float, str]] = []  # (when answered, the call's number)
    stop = threading.Event()

    def send() -> None:
        with app.client(headers=KEY) as client:
            n = 0
            while not stop.is_set():
                mobile = f"+1555{2_000_000 + n}"
                if client.post(LEGACY_PATH, json=call(mobile, 1, n % 60)).status_code == 200:
                    answered.append((time.monotonic(), mobile))
                n += 1

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_for(lambda: len(answered) >= 30)
        began = time.monotonic()
        path, manifest = snapshots.take(database, tmp_path / "backups")
        so_far = len(answered)
        wait_for(lambda: len(answered) >= so_far + 10)  # the intake kept answering meanwhile
    finally:
        stop.set()
        sender.join()
    before = {mobile for at, mobile in answered if at < began}
    assert len(before) >= 30

    verified = snapshots.verify(settings, path, keep_copy=True)  # integrity, the manifest, a recount
    try:
        stored = calls_of(database_url_of(verified))
    finally:
        snapshots.discard(verified)
    assert before <= set(stored)
    assert manifest.tables["calls"] == len(stored) == verified.tables["calls"]
    assert manifest.schema_revision == verified.schema_revision
    document = json.loads(path.with_suffix(".json").read_text())
    assert document["sha256"] == manifest.sha256 and document["size"] == path.stat().st_size
    assert [backup.path for backup in snapshots.list_backups(tmp_path / "backups")] == [path]


def test_a_member_erased_after_a_backup_is_erased_again_by_the_restore(
    app_factory: Callable[..., RunningApp], database: Database, settings: Settings, cli: Run, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    environment = {"ROLLCALL_BACKUP_DIR": str(backups)}
    app = app_factory(backup_dir=str(backups))
    with app.client() as client:
        member_id = member_with_history(client, database)
        taken = cli("backup", env=environment)
        assert "backed up to" in taken.stdout
        (backup,) = (found.path for found in snapshots.list_backups(backups))
        # After the backup: another call of the member's (the backup never holds it), then the erasure.
        assert client.post(LEGACY_PATH, json=call(MEMBER, 2, 40), headers=KEY).status_code == 200
        wait_for(lambda: len(posts_of(client, member_id)) == 3)
        assert client.delete(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 200
    written = (backups / ledger.LEDGER_FILE).read_text()
    assert member_id in written and NATIONAL not in written and MEMBER not in written
    assert len(json.loads(written)["calls"]) == 3  # the rejected call has no key: found by its number
    app.stop()
    database.dispose()

    restored = cli("restore", str(backup), "--yes", env=environment)
    assert f"restored {backup}" in restored.stdout
    assert f"1 member(s) erased since the backup erased again: {member_id}" in restored.stdout
    assert "kept at" in restored.stdout

    with database.reading() as session:
        assert session.scalar(sa.select(User).where(User.mobile == MEMBER)) is None
        assert session.scalar(sa.select(User).where(User.id == member_id)) is None
        assert session.scalar(sa.select(User).where(User.mobile == OTHER)) is not None
        states = session.execute(sa.select(Call.state, sa.func.count()).group_by(Call.state)).all()
        kept, counted = statistics.maintained(session), statistics.recount(session)
    assert dict(states) == {CallState.ERASED: 4, CallState.IMPORTED: 1}  # 3 from the backup, 1 it never held
    assert kept == counted
    path = sqlite_file(settings)
    if path is not None:
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert NATIONAL.encode() not in file.read_bytes(), file.name
        assert list(path.parent.glob(f"{path.name}.before-restore-*"))
    else:
        assert drop_kept_aside(settings.database_url) == 1

    # CallPower replays the member's calls, the one the backup never held too: nothing is made.
    again = app_factory(backup_dir=str(backups))
    with again.client() as client:
        for record in (call(MEMBER, 1, 1), call(MEMBER, 2, 2), call(MEMBER, 2, 40)):
            assert client.post(LEGACY_PATH, json=record, headers=KEY).status_code == 200
        with database.reading() as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(Call)) == 5
        assert user_of(client, MEMBER) is None
    # The ledger file is unchanged: the restored database now holds the entry it applied.
    assert (backups / ledger.LEDGER_FILE).read_text() == written


def test_serve_applies_the_ledger_after_a_restore_by_hand(
    app_factory: Callable[..., RunningApp], database: Database, settings: Settings, tmp_path: Path
) -> None:
    path = sqlite_file(settings)
    if path is None:
        pytest.skip("a restore by hand is a file copied back: SQLite (PostgreSQL's is pg_restore: the same start)")
    backups = tmp_path / "backups"
    app = app_factory(backup_dir=str(backups))
    with app.client() as client:
        member_id = member_with_history(client, database)
        backup, _ = snapshots.take(database, backups)
        assert client.delete(f"/api/v3/users/{member_id}", headers=STAFF).status_code == 200
    app.stop()
    database.dispose()
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(backup, path)  # what an operator might do without `rollcall restore`

    process, url = serve_process(settings.database_url, tmp_path / "serve.log", ROLLCALL_BACKUP_DIR=str(backups))
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert user_of(client, MEMBER) is None
            assert user_of(client, OTHER) is not None
    finally:
        process.terminate()
        process.wait(30)
    assert '"erased_again":1' in (tmp_path / "serve.log").read_text()


def test_serve_backs_up_on_its_schedule_keeps_the_newest_and_refuses_a_restore_meanwhile(
    settings: Settings, database: Database, cli: Run, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    log = tmp_path / "serve.log"
    database.dispose()
    process, url = serve_process(
        settings.database_url,
        log,
        ROLLCALL_BACKUP_DIR=str(backups),
        ROLLCALL_BACKUP_INTERVAL="1s",
        ROLLCALL_BACKUP_KEEP="2",
    )
    try:
        wait_for(lambda: log.read_text().count("backup.taken") >= 3, timeout=60)
        listed = snapshots.list_backups(backups)
        assert len(listed) == 2 and all(backup.manifest and backup.manifest.verified_at for backup in listed)
        with httpx.Client(base_url=url, timeout=10) as client:
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).text
        (line,) = [line for line in metrics.splitlines() if line.startswith("rollcall_backup_last_success_timestamp")]
        assert time.time() - float(line.split()[-1]) < 30

        refused = cli("restore", str(listed[-1].path), "--yes", check=False)
        assert refused.returncode == 1
        assert "in use" in refused.stderr and "Traceback" not in refused.stderr
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode == 0, log.read_text()
    path = sqlite_file(settings)
    if path is not None:
        assert not list(path.parent.glob(f"{path.name}.before-restore-*"))  # nothing was moved


def test_a_damaged_backup_is_refused_by_verify_and_restore(
    database: Database, settings: Settings, cli: Run, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    map_seed_campaign(database, 1)
    backup, manifest = snapshots.take(database, backups)
    database.dispose()
    assert "sound" in cli("backups", "verify", str(backup)).stdout

    content = backup.read_bytes()
    damaged = {
        "cut": content[: len(content) // 2],
        "flipped": content[:4096] + bytes(b ^ 0xFF for b in content[4096:4200]) + content[4200:],
    }
    for name, data in damaged.items():
        copy = backups / f"{snapshots.PREFIX}damaged-{name}{backup.suffix}"
        copy.write_bytes(data)
        shutil.copyfile(backup.with_suffix(".json"), copy.with_suffix(".json"))
        checked = cli("backups", "verify", str(copy), check=False)
        assert checked.returncode == 1, name
        assert "is damaged" in checked.stderr and "Traceback" not in checked.stderr
        refused = cli("restore", str(copy), "--yes", check=False)
        assert refused.returncode == 1 and "is damaged" in refused.stderr
    # Without a manifest, the content itself is read through and found wanting.
    garbage = backups / f"{snapshots.PREFIX}garbage{backup.suffix}"
    garbage.write_bytes(b"not a backup at all" * 100)
    checked = cli("backups", "verify", str(garbage), check=False)
    assert checked.returncode == 1 and "error:" in checked.stderr and "Traceback" not in checked.stderr

    path = sqlite_file(settings)
    if path is not None:
        assert not list(path.parent.glob(f"{path.name}.before-restore-*"))
    with database.reading() as session:  # the database was left as it was
        assert session.scalar(sa.select(sa.func.count()).select_from(ledger.Erasure)) == 0
    listed = cli("backups", "list", "--dir", str(backups)).stdout
    assert backup.name in listed and "yes" in listed


def test_backups_without_a_directory_or_a_client_tool_say_what_to_do(
    cli: Run, settings: Settings, tmp_path: Path
) -> None:
    missing = cli("backup", check=False)
    assert missing.returncode == 1 and "--to DIR, or set ROLLCALL_BACKUP_DIR" in missing.stderr
    half = cli("backup", check=False, env={"ROLLCALL_BACKUP_INTERVAL": "6h"})
    assert half.returncode == 1 and "ROLLCALL_BACKUP_DIR is not" in half.stderr
    if settings.database_url.startswith("postgresql"):
        no_tools = cli("backup", "--to", str(tmp_path), check=False, env={"PATH": "/nonexistent"})
        assert no_tools.returncode == 1 and "pg_dump is not installed" in no_tools.stderr
    taken = cli("backup", "--to", str(tmp_path / "b"), "--keep", "1")
    assert "checked" in taken.stdout and "backup:" in taken.stderr  # plain progress lines off a terminal
    cli("backup", "--to", str(tmp_path / "b"), "--keep", "1")
    assert len(snapshots.list_backups(tmp_path / "b")) == 1


def test_the_overview_says_how_old_the_last_backup_is_or_that_there_is_none(
    app_factory: Callable[..., RunningApp], database: Database, tmp_path: Path
) -> None:
    def overview(app: RunningApp) -> str:
        with app.client() as client:
            sign_in_over_http(client)
            return client.get("/console/").text

    unset = overview(app_factory())
    assert "No backups are taken" in unset and "not configured" in unset
    backups = tmp_path / "backups"
    waiting = overview(app_factory(backup_dir=str(backups), backup_interval=3600.0))
    assert "The newest backup is missing" in waiting and "every 1 h 00 min" in waiting
    snapshots.take(database, backups)
    fresh = overview(app_factory(backup_dir=str(backups), backup_interval=3600.0))
    assert 'id="backups-warning"' not in fresh and "just now" in fresh and "one every 1 h 00 min" in fresh
    assert schedule.status(Settings(database_url=database.url, backup_dir=str(backups))).last is not None
    # The newest backup older than two intervals: the overview warns, and says how old it is.
    manifest_file = next(backups.glob("*.json"))
    document = json.loads(manifest_file.read_text())
    document["created_at"] = "2026-01-01T00:00:00Z"
    manifest_file.write_text(json.dumps(document))
    stale = overview(app_factory(backup_dir=str(backups), backup_interval=3600.0))
    assert 'id="backups-warning"' in stale and "The newest backup is from" in stale and "days ago" in stale


def test_calls_import_and_stats_rebuild_show_their_progress(cli: Run, tmp_path: Path, database: Database) -> None:
    map_seed_campaign(database, 1)
    file = tmp_path / "calls.jsonl"
    file.write_text("".join(json.dumps(call(f"+1555{3_000_000 + n}", 1, n % 60)) + "\n" for n in range(30)))
    imported = cli("calls", "import", str(file))
    assert "stored=30" in imported.stdout
    assert "import calls.jsonl: lines 30 of 30 lines (100%)" in imported.stderr
    rebuilt = cli("stats", "rebuild")
    assert "stats rebuild: posts" in rebuilt.stderr and "counted 30 calls" in rebuilt.stdout


def test_the_ledger_file_ignores_a_line_cut_short_and_refuses_a_damaged_one(tmp_path: Path) -> None:
    entry = ledger.new_entry("user-1", None, [], parse_timestamp("2026-12-06T00:00:00Z"))
    ledger.append(tmp_path, [entry])
    path = ledger.ledger_path(tmp_path)
    path.write_text(path.read_text() + '{"id": "cut sh')
    assert [found.id for found in ledger.read(tmp_path)] == [entry.id]
    ledger.append(tmp_path, [ledger.new_entry("user-2", None, [], entry.erased_at)])  # on a line of its own
    assert [found.user_id for found in ledger.read(tmp_path)] == ["user-1", "user-2"]
    path.write_text("nonsense\n" + path.read_text())
    with pytest.raises(ledger.DamagedLedger):
        ledger.read(tmp_path)


def test_a_backup_older_than_the_code_is_brought_forward_by_the_restore(
    database: Database, settings: Settings, cli: Run, tmp_path: Path
) -> None:
    import alembic.command

    from rollcall.db import migrate, migrations_config
    from rollcall.glance import head_revision

    with database.write_engine.begin() as connection:  # the schema of the release before
        alembic.command.downgrade(migrations_config(connection), "0012")
    backup, manifest = snapshots.take(database, tmp_path / "backups")
    assert manifest.schema_revision == "0012"
    migrate(database)
    database.dispose()
    restored = cli("restore", str(backup), "--yes")
    assert f"schema brought forward from 0012 to {head_revision()}" in restored.stdout
    with database.reading() as session:
        assert session.scalar(sa.text("SELECT version_num FROM alembic_version")) == head_revision()
        assert session.scalar(sa.select(sa.func.count()).select_from(ledger.Erasure)) == 0
    path = sqlite_file(settings)
    if path is None:
        drop_kept_aside(settings.database_url)
