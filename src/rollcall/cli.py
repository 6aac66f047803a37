"""The `rollcall` command. Every command calls the same service functions as the HTTP API.

Errors the user can fix print one line on stderr and exit 1; they never print a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import sqlalchemy as sa
import typer

from rollcall.activity import service as activity
from rollcall.callpower import service as calls
from rollcall.callpower.models import CallState
from rollcall.callpower.record import InvalidMobile, normalize_mobile
from rollcall.config import ConfigError, Settings
from rollcall.credentials import ADMIN_TOKEN, CALLPOWER_KEY, ensure_secret, stored_secret
from rollcall.db import Database, DatabaseNotMigrated, migrate, schema_is_current
from rollcall.errors import InvalidInput, RollcallError
from rollcall.logs import configure_logging
from rollcall.paging import PageRequest

app = typer.Typer(
    help="rollcall: CallPower calls become users, signups and phone-call posts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
campaigns_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
actions_app = typer.Typer(help="Campaign actions and their CallPower campaigns.", no_args_is_help=True)
calls_app = typer.Typer(help="Stored CallPower calls.", no_args_is_help=True)
posts_app = typer.Typer(help="Posts.", no_args_is_help=True)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
signups_app = typer.Typer(help="Signups.", no_args_is_help=True)
keys_app = typer.Typer(help="The secrets that open the service.", no_args_is_help=True)
callpower_campaigns_app = typer.Typer(help="CallPower campaigns seen, and their defaults.", no_args_is_help=True)
for sub, name in (
    (campaigns_app, "campaigns"),
    (actions_app, "actions"),
    (calls_app, "calls"),
    (posts_app, "posts"),
    (users_app, "users"),
    (signups_app, "signups"),
    (keys_app, "keys"),
    (callpower_campaigns_app, "callpower-campaigns"),
):
    app.add_typer(sub, name=name)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many rows, newest first.")]
T = TypeVar("T")


class CommandError(Exception):
    """A mistake the user can fix; printed as one line."""


def _settings() -> Settings:
    return Settings.from_env()


def _database(settings: Settings | None = None) -> Database:
    """The configured database, which must exist and be migrated (read commands never create it)."""
    settings = settings or _settings()
    if settings.database_url.startswith("sqlite"):
        path = settings.database_url.split("///", 1)[-1]
        if path and not Path(path).exists():
            raise CommandError(f"no database at {path}: run `rollcall migrate` or `rollcall serve` first")
    database = Database.for_settings(settings)
    if not schema_is_current(database):
        raise CommandError("the database schema is not current: run `rollcall migrate`")
    return database


def _print(rows: Sequence[dict[str, Any]] | dict[str, Any], as_json: bool, columns: Sequence[str] = ()) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if isinstance(rows, dict):
        for key, value in rows.items():
            typer.echo(f"{key}: {value}")
        return
    if not rows:
        typer.echo("(none)")
        return
    columns = list(columns) or list(rows[0])
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


# -- running --------------------------------------------------------------------------------


@app.command("migrate")
def migrate_command() -> None:
    """Create the database or bring its schema up to date."""
    database = Database.for_settings(_settings())
    migrate(database)
    typer.echo("database schema is current")


_GENERATED = (
    # (stored secret, what it is, the variable that would give it, how to print it)
    (CALLPOWER_KEY, "CallPower API key", "CALLPOWER_API_KEY", "`rollcall keys show`; give it to CallPower"),
    (ADMIN_TOKEN, "staff token", "ROLLCALL_ADMIN_TOKEN", "`rollcall keys show --admin`; for the API and console"),
)


def _announce_secrets(settings: Settings, database: Database) -> None:
    """The service never runs open: make the secrets the environment does not give, and say so."""
    given = {CALLPOWER_KEY: settings.callpower_api_keys, ADMIN_TOKEN: settings.admin_tokens}
    for name, what, variable, how in _GENERATED:
        if given[name]:
            continue
        _, made = ensure_secret(database, name)
        done = f"Generated a {what}" if made else f"Using the {what} generated on first start"
        typer.echo(f"{done} ({variable} is not set). Print it with {how}.", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API processes.")] = 1,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate (or full chain) for HTTPS [ROLLCALL_TLS_CERT].")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of that certificate [ROLLCALL_TLS_KEY].")
    ] = None,
) -> None:
    """Run the service: migrations, the writer process (stores calls, runs the importer), the HTTP API."""
    from rollcall.callpower.writer_process import WriterProcess
    from rollcall.config import SUPERVISOR_VARIABLE, WRITER_SOCKET_VARIABLE

    settings = _settings()
    tls = _tls_files(str(tls_cert) if tls_cert else settings.tls_cert, str(tls_key) if tls_key else settings.tls_key)
    # The writer process counts imports; /metrics (in the API processes) adds up every process.
    _count_metrics_across_processes()
    database = Database.for_settings(settings)
    migrate(database)
    _announce_secrets(settings, database)
    database.dispose()
    configure_logging(settings.log_level)
    writer = WriterProcess()
    writer.start()  # WriterNotStarted (one line, exit 1) if it cannot
    os.environ[WRITER_SOCKET_VARIABLE] = writer.path  # the API processes hand their calls to it
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())  # workers stop if this process is killed
    # uvicorn drains on SIGTERM, then raises the signal again for the parent to see. A drained
    # stop is a clean stop: this handler takes that second signal so the process exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    scheme = "https" if tls else "http"
    typer.echo(f"rollcall serving {scheme}://{host}:{port}", err=True)
    try:
        _run_uvicorn(host, port, workers, tls)
    finally:
        writer.stop()  # last: requests in flight were waiting for it


def _tls_files(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """The certificate and key to serve HTTPS with, checked now: a half-given or unusable pair
    stops the start with one line, rather than a plain-HTTP service CallPower cannot reach."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "--tls-cert (ROLLCALL_TLS_CERT)" if cert is None else "--tls-key (ROLLCALL_TLS_KEY)"
        raise CommandError(f"HTTPS needs a certificate and its key: {missing} is not set")
    import ssl

    for path in (cert, key):
        if not Path(path).is_file():
            raise CommandError(f"no TLS file at {path}")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as error:
        raise CommandError(f"cannot serve HTTPS with {cert} and {key}: {error}") from None
    return cert, key


def _run_uvicorn(host: str, port: int, workers: int, tls: tuple[str, str] | None) -> None:
    import uvicorn

    uvicorn.run(
        "rollcall.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        server_header=False,
        log_level="info",
        timeout_graceful_shutdown=30,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )


def _count_metrics_across_processes() -> None:
    """Give this process and its children one fresh directory for Prometheus counters.

    Must run before prometheus_client is imported; an operator's own setting is kept.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="rollcall-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def _serve_metrics(host: str, port: int, settings: Settings) -> None:
    """`/metrics` of this importer process (and its children), on their own address."""
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    from rollcall.metrics import DatabaseCollector

    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    registry.register(DatabaseCollector(Database.for_settings(settings)))
    start_http_server(port, addr=host, registry=registry)


def _run_importer() -> None:
    """One importer process: imports until SIGTERM or SIGINT, then finishes the call in hand."""
    import threading

    from rollcall.worker import Importer

    # Listen for the word to stop before anything else: `rollcall worker` may be stopped while
    # this process is still starting.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    settings = _settings()
    configure_logging(settings.log_level)
    database = _database(settings)
    Importer(database, settings).run(stopping)
    # Python gives SIGTERM back its default (death) while it exits; a second one has nothing to stop.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    database.dispose()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Importer processes to run.")] = 1,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port (no token: bind it privately).")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Run importers on their own (beside `rollcall serve`, or on other machines)."""
    if concurrency > 1:
        _count_metrics_across_processes()
    settings = _settings()
    _database(settings).dispose()  # fail here, once, if the database is missing or not migrated
    if metrics_port is not None:
        _serve_metrics(metrics_host, metrics_port, settings)
    typer.echo(f"{concurrency} importer(s) running; SIGTERM or Ctrl-C stops them", err=True)
    if concurrency == 1:
        _run_importer()
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_run_importer, name=f"rollcall-importer-{n}") for n in range(concurrency)]
    stopping = False

    def tell_children_to_stop() -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signal.SIGTERM)

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        tell_children_to_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        if stopping:
            break
        child.start()
    # Supervise: an importer that died is started again (its claimed calls were released with
    # its connection); on SIGTERM every importer finishes its call in hand and exits.
    while not stopping:
        for n, child in enumerate(children):
            if not child.is_alive() and not stopping:
                typer.echo(f"importer {child.name} exited ({child.exitcode}); starting it again", err=True)
                children[n] = context.Process(target=_run_importer, name=child.name)
                children[n].start()
        time.sleep(0.5)
    # Again: the signal may have come while an importer was being launched (it had no pid yet).
    # A second SIGTERM is harmless to an importer that got the first.
    tell_children_to_stop()
    for child in children:
        if child.pid is not None:
            child.join(60)
    # Killed by our SIGTERM (-15): it came before the process had started listening for it, so
    # it held nothing (seen when the importers are stopped a second after they started).
    failed = [child for child in children if child.exitcode not in (0, None, -signal.SIGTERM)]
    for child in failed:
        typer.echo(f"importer {child.name} exited with {child.exitcode} while stopping", err=True)
    if failed:
        raise SystemExit(1)


@keys_app.command("show")
def keys_show(
    admin: Annotated[bool, typer.Option("--admin", help="The staff token instead of the CallPower key.")] = False,
) -> None:
    """Print the generated CallPower API key (or, with --admin, the generated staff token)."""
    settings = _settings()
    name, variable = (ADMIN_TOKEN, "ROLLCALL_ADMIN_TOKEN") if admin else (CALLPOWER_KEY, "CALLPOWER_API_KEY")
    if settings.admin_tokens if admin else settings.callpower_api_keys:
        typer.echo(f"{variable} is set: those are the ones in use (this command does not repeat them).", err=True)
        return
    database = _database(settings)
    with database.reading() as session:
        secret = stored_secret(session, name)
    if secret is None:
        raise CommandError("nothing generated yet: `rollcall serve` makes it on first start")
    typer.echo(secret)


# -- campaigns and actions ------------------------------------------------------------------


@campaigns_app.command("add")
def campaigns_add(
    title: Annotated[str, typer.Option("--title", help="The campaign's internal title.")],
    cause: Annotated[str | None, typer.Option(help="Its cause.")] = None,
) -> None:
    """Add a campaign."""
    with _database().writing() as session:
        campaign = activity.create_campaign(session, internal_title=title, cause=cause)
        typer.echo(f"campaign {campaign.id} added")


@campaigns_app.command("list")
def campaigns_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List campaigns, newest first."""
    with _database().reading() as session:
        rows = [c.document() for c in activity.list_campaigns(session, PageRequest(limit)).items]
    _print(rows, as_json, ("id", "internal_title", "cause", "created_at"))


@actions_app.command("add")
def actions_add(
    campaign_id: Annotated[int, typer.Option("--campaign-id", help="The campaign the action belongs to.")],
    name: Annotated[str, typer.Option("--name", help="The action's name.")],
    post_type: Annotated[str, typer.Option("--post-type", help="Type of its posts.")] = "phone-call",
    callpower_campaign_id: Annotated[
        int | None, typer.Option("--callpower-campaign-id", min=1, help="The CallPower campaign it receives calls of.")
    ] = None,
) -> None:
    """Add an action to a campaign, optionally mapped to a CallPower campaign."""
    with _database().writing() as session:
        action = activity.create_action(session, campaign_id=campaign_id, name=name, post_type=post_type)
        if callpower_campaign_id is not None:
            calls.map_campaign(session, action.id, callpower_campaign_id)
        typer.echo(f"action {action.id} added")


@actions_app.command("list")
def actions_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List actions, newest first."""
    with _database().reading() as session:
        rows = [a.document() for a in activity.list_actions(session, PageRequest(limit)).items]
    _print(rows, as_json, ("id", "campaign_id", "name", "post_type", "callpower_campaign_id"))


@actions_app.command("map")
def actions_map(
    action_id: Annotated[int, typer.Argument(help="The action.")],
    callpower_campaign_id: Annotated[int, typer.Option("--callpower-campaign-id", min=1)],
) -> None:
    """Map a CallPower campaign to an action; its waiting calls are imported at once."""
    with _database().writing() as session:
        _, released = calls.map_campaign(session, action_id, callpower_campaign_id)
    typer.echo(
        f"action {action_id} now receives CallPower campaign {callpower_campaign_id}; "
        f"{released} waiting calls handed to the importer"
    )


# -- calls ----------------------------------------------------------------------------------


def _one(value: T | None) -> list[T] | None:
    """A filter on one value, or no filter."""
    return None if value is None else [value]


def _state(value: str | None) -> CallState | None:
    if value is None:
        return None
    try:
        return CallState(value)
    except ValueError:
        raise CommandError(f"unknown state {value!r}; one of: {', '.join(s.value for s in CallState)}") from None


@calls_app.command("list")
def calls_list(
    state: Annotated[str | None, typer.Option(help="Only calls in this state.")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List stored calls, newest first."""
    with _database().reading() as session:
        rows = [c.document() for c in calls.list_calls(session, PageRequest(limit), states=_one(_state(state))).items]
    if not as_json:
        for row in rows:
            row["error"] = row["last_error"] or ("; ".join(sum((row["errors"] or {}).values(), [])) or None)
    _print(
        rows,
        as_json,
        ("id", "state", "callpower_campaign_id", "mobile", "call_timestamp", "attempts", "post_id", "error"),
    )


@calls_app.command("retry")
def calls_retry(
    call_id: Annotated[int | None, typer.Argument(help="One call to retry.")] = None,
    state: Annotated[str | None, typer.Option(help="Retry every call in this state.")] = None,
) -> None:
    """Send failed, dead or unmapped calls back to the importer."""
    if (call_id is None) == (state is None):
        raise CommandError("give either a call id or --state, not both")
    with _database().writing() as session:
        if call_id is not None:
            calls.retry_call(session, call_id)
            typer.echo(f"call {call_id} sent back to the importer")
        else:
            count = calls.retry_calls(session, _state(state))  # type: ignore[arg-type]
            typer.echo(f"{count} calls sent back to the importer")


def _assignments(values: list[str], option: str) -> dict[str, str | None]:
    """`--set field=value` options as {field: value}; an empty value (`field=`) is None."""
    fields: dict[str, str | None] = {}
    for value in values:
        name, equals, text = value.partition("=")
        if not equals or not name.strip():
            raise CommandError(f"{option} takes field=value, got {value!r}")
        fields[name.strip()] = text if text.strip() else None
    return fields


SetOption = Annotated[list[str], typer.Option("--set", help="field=value (repeatable); field= removes the field.")]


@calls_app.command("repair")
def calls_repair(
    call_id: Annotated[int, typer.Argument(help="A rejected call.")],
    fields: SetOption,
    as_json: JsonOption = False,
) -> None:
    """Correct a rejected call: the body as received with these fields laid over it is validated again."""
    from rollcall.callpower.repairs import repair_call

    settings = _settings()
    with _database(settings).writing() as session:
        call = repair_call(session, call_id, _assignments(fields, "--set"), region=settings.default_region)
        document = call.document()
    if as_json:
        _print(document, True)
        return
    typer.echo(
        f"call {call_id} repaired: {document['state']}"
        + (f" (the same call as call {document['duplicate_of']})" if document["duplicate_of"] else "")
    )


@calls_app.command("revalidate")
def calls_revalidate(
    callpower_campaign_id: Annotated[int, typer.Option("--callpower-campaign-id", min=1, help="The campaign.")],
) -> None:
    """Validate a CallPower campaign's rejected calls again, with its defaults as they are now."""
    from rollcall.callpower.repairs import revalidate_calls

    settings = _settings()
    done = revalidate_calls(_database(settings), callpower_campaign_id, region=settings.default_region)
    typer.echo(f"revalidated={done.revalidated} duplicates={done.duplicates} still_rejected={done.still_rejected}")


@callpower_campaigns_app.command("list")
def callpower_campaigns_list(as_json: JsonOption = False, limit: LimitOption = 100) -> None:
    """List the CallPower campaigns seen, newest id first, with their calls and defaults."""
    from rollcall.callpower.views import campaign_document

    with _database().reading() as session:
        rows = [campaign_document(c) for c in calls.list_callpower_campaigns(session, PageRequest(limit)).items]
    if not as_json:
        for row in rows:
            row["action"] = row["action"]["id"] if row["action"] else None
            row["calls"] = " ".join(f"{state}={count}" for state, count in row["calls"].items() if count)
            row["defaults"] = " ".join(f"{name}={value!r}" for name, value in row["defaults"].items())
    _print(rows, as_json, ("callpower_campaign_id", "name", "action", "calls", "defaults"))


@callpower_campaigns_app.command("defaults")
def callpower_campaigns_defaults(
    callpower_campaign_id: Annotated[int, typer.Argument(help="The CallPower campaign.")],
    fields: Annotated[
        list[str] | None, typer.Option("--set", help="field=value (repeatable); field= removes that default.")
    ] = None,
    unset: Annotated[list[str] | None, typer.Option("--unset", help="A field whose default goes (repeatable).")] = None,
) -> None:
    """Set or remove a CallPower campaign's defaults for fields its calls lack; with no option, show them."""
    from rollcall.callpower.repairs import set_campaign_defaults

    changes = _assignments(fields or [], "--set") | dict.fromkeys(unset or [])
    with _database().writing() as session:
        if changes:
            set_campaign_defaults(session, callpower_campaign_id, changes)
        defaults = calls.get_callpower_campaign(session, callpower_campaign_id).defaults
    if not defaults:
        typer.echo(f"CallPower campaign {callpower_campaign_id} has no defaults")
    for name, value in defaults.items():
        typer.echo(f"{name}={value}")


@calls_app.command("import")
def calls_import(
    file: Annotated[Path, typer.Argument(help="A JSON-lines (.jsonl) or CSV (.csv) file of call records.")],
) -> None:
    """Store the calls of a file, through the same validation and de-duplication as the intake."""
    from rollcall.callpower.files import import_file

    if not file.is_file():
        raise CommandError(f"no file at {file}")
    settings = _settings()
    report = import_file(_database(settings), file, region=settings.default_region)
    for number, problems in report.problems:
        typer.echo(f"line {number}: rejected: {'; '.join(problems)}", err=True)
    typer.echo(f"stored={report.stored} duplicate={report.duplicate} rejected={report.rejected}")


# -- activity -------------------------------------------------------------------------------


@posts_app.command("list")
def posts_list(
    campaign_id: Annotated[int | None, typer.Option("--campaign-id")] = None,
    status: Annotated[str | None, typer.Option(help="accepted, incomplete, ...")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List posts, newest first."""
    with _database().reading() as session:
        rows = [
            p.document()
            for p in activity.list_posts(
                session, PageRequest(limit), campaign_ids=_one(campaign_id), statuses=_one(status)
            ).items
        ]
    _print(rows, as_json, ("id", "type", "status", "campaign_id", "action_id", "northstar_id", "call_timestamp"))


@users_app.command("list")
def users_list(
    mobile: Annotated[str | None, typer.Option(help="Only the user with this number (any format).")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List users, newest first."""
    settings = _settings()
    if mobile is not None:
        try:
            mobile = normalize_mobile(mobile, settings.default_region)
        except InvalidMobile:
            raise CommandError(f"{mobile!r} is not a possible phone number") from None
    with _database(settings).reading() as session:
        rows = [u.document() for u in activity.list_users(session, PageRequest(limit), mobiles=_one(mobile)).items]
    _print(rows, as_json, ("id", "mobile", "sms_status", "source", "created_at"))


@signups_app.command("list")
def signups_list(
    campaign_id: Annotated[int | None, typer.Option("--campaign-id")] = None,
    as_json: JsonOption = False,
    limit: LimitOption = 100,
) -> None:
    """List signups, newest first."""
    with _database().reading() as session:
        rows = [
            s.document()
            for s in activity.list_signups(session, PageRequest(limit), campaign_ids=_one(campaign_id)).items
        ]
    _print(rows, as_json, ("id", "northstar_id", "campaign_id", "quantity", "source", "created_at"))


# -- the one place errors become a line on stderr -------------------------------------------

_USER_ERRORS: tuple[type[BaseException], ...] = (
    CommandError,
    RollcallError,
    ConfigError,
    DatabaseNotMigrated,
    sa.exc.OperationalError,
    sa.exc.ArgumentError,
)


def _describe(error: BaseException) -> str:
    if isinstance(error, InvalidInput):
        return "; ".join(message for messages in error.fields.values() for message in messages)
    if isinstance(error, sa.exc.OperationalError):
        return "database error: " + str(error.orig).strip().splitlines()[0]
    return str(error)


def main(argv: Sequence[str] | None = None, *, run: Callable[..., Any] = app) -> None:
    try:
        run(args=argv, prog_name="rollcall")
    except _USER_ERRORS as error:
        typer.echo(f"error: {_describe(error)}", err=True)
        raise SystemExit(1) from None
