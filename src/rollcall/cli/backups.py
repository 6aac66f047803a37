"""Backups: `rollcall backup`, `rollcall backups list|verify`, `rollcall restore`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import CommandError, JsonOption, app, database_of, print_rows, settings_of_environment
from rollcall.cli.lazy import lazy
from rollcall.cli.progress import progress_of

if TYPE_CHECKING:
    from rollcall import config
    from rollcall.backups import snapshots
else:
    config, snapshots = lazy("rollcall.config"), lazy("rollcall.backups.snapshots")

backups_app = typer.Typer(
    rich_markup_mode=None, help="Backups of the database: list and verify them.", no_args_is_help=True
)
app.add_typer(backups_app, name="backups")


def _directory(given: Path | None) -> Path:
    if given is not None:
        return given
    configured = settings_of_environment().backup_dir
    if not configured:
        raise CommandError(f"say where: --to DIR, or set {config.environment_variable('backup_dir')}")
    return Path(configured)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


@app.command("backup")
def backup(
    to: Annotated[Path | None, typer.Option("--to", help="Directory for the backup [ROLLCALL_BACKUP_DIR].")] = None,
    keep: Annotated[
        int | None, typer.Option("--keep", min=1, help="Then remove the oldest backups beyond this many.")
    ] = None,
) -> None:
    """Back up the database now, while the service runs; check the copy and write its manifest."""
    directory = _directory(to)
    database = database_of()
    try:
        with progress_of("backup") as progress:
            path, manifest = snapshots.take(database, directory, keep=keep, progress=progress)
    finally:
        database.dispose()
    typer.echo(f"backed up to {path} ({_size(manifest.size)}, schema {manifest.schema_revision}, checked)")


@backups_app.command("list")
def backups_list(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Directory of the backups [ROLLCALL_BACKUP_DIR].")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The backups in the backup directory, oldest first: time, size, verified or not."""
    rows = []
    for found in snapshots.list_backups(_directory(directory)):
        manifest = found.manifest
        rows.append(
            {
                "file": found.path.name,
                "taken_at": manifest.created_at if manifest else None,
                "size": found.size if as_json else _size(found.size),
                "schema": manifest.schema_revision if manifest else None,
                "verified_at": manifest.verified_at if manifest else None,
                "verified": "yes" if manifest and manifest.verified_at else "no (no manifest)",
            }
        )
    if as_json:
        for row in rows:
            row["verified"] = row["verified"] == "yes"
    print_rows(rows, as_json, ("file", "taken_at", "size", "schema", "verified"))


@backups_app.command("verify")
def backups_verify(file: Annotated[Path, typer.Argument(help="The backup file (its manifest beside it).")]) -> None:
    """Restore a backup into a temporary place and check it: checksum, integrity, rows, kept counts."""
    with progress_of("verify") as progress:
        verified = snapshots.verify(settings_of_environment(), file, progress=progress)
    rows = sum(verified.tables.values())
    said = "its manifest's" if verified.manifest else "(no manifest: checksum and rows not compared)"
    typer.echo(
        f"{file}: sound; schema {verified.schema_revision}; {rows:,} rows in {len(verified.tables)} tables, "
        f"as {said}; kept counts equal a recount"
    )


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="The backup file to restore.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Put a backup in place of the database (the service stopped): the current database is kept
    aside, the backup verified, brought up to date, and the erasures since applied again."""
    settings = settings_of_environment()
    if not file.is_file():
        raise CommandError(f"no backup at {file}")
    manifest = snapshots.read_manifest(file)
    taken = f" taken {manifest.created_at}" if manifest else ""
    if not yes and not typer.confirm(f"Replace the database with {file.name}{taken}? (the current one is kept aside)"):
        raise CommandError("nothing restored")
    ledgers = [file.parent, *([Path(settings.backup_dir)] if settings.backup_dir else [])]
    with progress_of("restore") as progress:
        done = snapshots.restore(settings, file, ledgers=list(dict.fromkeys(ledgers)), progress=progress)
    typer.echo(f"restored {file}{taken}")
    if done.kept_aside:
        typer.echo(f"the database before the restore is kept at {done.kept_aside}")
    if done.migrated_to != done.schema_revision:
        typer.echo(f"schema brought forward from {done.schema_revision} to {done.migrated_to}")
    erased = done.reconciled.applied
    typer.echo(
        f"{len(erased)} member(s) erased since the backup erased again" + (f": {', '.join(erased)}" if erased else "")
    )
