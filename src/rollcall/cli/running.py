"""Commands that run rollcall: `serve`, `worker`, `migrate`, and `keys show`."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rollcall.cli.common import CommandError, app, database_of, keys_app, sessions_app, settings_of_environment
from rollcall.cli.lazy import lazy

if TYPE_CHECKING:
    from rollcall import config, credentials, db, logs, processes
    from rollcall.backups import snapshots
else:
    config, credentials, db = lazy("rollcall.config"), lazy("rollcall.credentials"), lazy("rollcall.db")
    logs, processes, snapshots = lazy("rollcall.logs"), lazy("rollcall.processes"), lazy("rollcall.backups.snapshots")


@app.command("migrate")
def migrate_command() -> None:
    """Create the database or bring its schema up to date."""
    database = db.Database.for_settings(settings_of_environment())
    db.migrate(database)
    typer.echo("database schema is current")


def _generated() -> tuple[tuple[str, str, str, str], ...]:
    """(stored secret, what it is, the setting that would give it, how to print it)."""
    return (
        (
            credentials.CALLPOWER_KEY,
            "CallPower API key",
            "callpower_api_keys",
            "`rollcall keys show`; give it to CallPower",
        ),
        (
            credentials.ADMIN_TOKEN,
            "staff token",
            "admin_tokens",
            "`rollcall keys show --admin`; for the API and console",
        ),
    )


def _announce_secrets(settings: config.Settings, database: db.Database) -> None:
    """The service never runs open: make the secrets the environment does not give, and say so."""
    given = {credentials.CALLPOWER_KEY: settings.callpower_api_keys, credentials.ADMIN_TOKEN: settings.admin_tokens}
    for name, what, setting, how in _generated():
        if given[name]:
            continue
        _, made = credentials.ensure_secret(database, name)
        done = f"Generated a {what}" if made else f"Using the {what} generated on first start"
        typer.echo(f"{done} ({config.environment_variable(setting)} is not set). Print it with {how}.", err=True)


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
    # First, before anything imports prometheus_client: every process of the service counts into
    # files, which /metrics (in the API processes) adds up.
    _count_metrics_across_processes()
    from rollcall.callpower.source import CallPower
    from rollcall.calls.writer_process import WriterProcess
    from rollcall.config import SUPERVISOR_VARIABLE, WRITER_SOCKET_VARIABLE

    settings = settings_of_environment()
    logs.configure_logging(settings.log_level, settings.secrets())
    tls = _tls_files(str(tls_cert) if tls_cert else settings.tls_cert, str(tls_key) if tls_key else settings.tls_key)
    in_use = snapshots.hold_in_use(settings)  # noqa: F841 (held while this process lives: no restore meanwhile)
    database = db.Database.for_settings(settings)
    db.migrate(database)
    _announce_secrets(settings, database)
    if settings.backup_dir:  # erasures a restore or a lost append left out: applied before serving
        snapshots.reconcile(database, [settings.backup_dir])
    database.dispose()
    writer = WriterProcess(CallPower.of)
    writer.start()  # WriterNotStarted (one line, exit 1) if it cannot
    deliverer = _deliverers(settings.webhook_deliverers, backups=settings.backup_interval is not None)
    deliverer.start()
    deliverer.watch_in_background()
    os.environ[WRITER_SOCKET_VARIABLE] = writer.path  # the API processes hand their calls to it
    os.environ[SUPERVISOR_VARIABLE] = str(os.getpid())  # workers stop if this process is killed
    # uvicorn drains on SIGTERM, then raises the signal again for the parent to see. A drained
    # stop is a clean stop: this handler takes that second signal so the process exits 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    scheme = "https" if tls else "http"
    typer.echo(f"rollcall serving {scheme}://{host}:{port}", err=True)
    try:
        _run_uvicorn(settings, host, port, workers, tls)
    finally:
        deliverer.stop()  # it finishes the requests it has out
        writer.stop()  # last: requests in flight were waiting for it


def _deliverers(count: int, *, backups: bool = False) -> processes.Supervisor:
    """The webhooks' deliverers, each a process of its own, and the backup schedule's process if
    there is one (each started again if it dies)."""
    from rollcall.backups.schedule import run_schedule_process

    scheduled = [processes.Child("rollcall-backup", run_schedule_process, (os.getpid(),))] if backups else []
    return processes.Supervisor(
        [*_deliverer_children(count), *scheduled],
        on_exit=lambda name, code: typer.echo(f"{name} exited ({code}); starting it again", err=True),
    )


def _deliverer_children(count: int) -> list[processes.Child]:
    """`ROLLCALL_WEBHOOK_DELIVERERS` deliverer processes: they share the work (each delivery is
    taken, leased, by one of them at a time), so two send about half as much again as one."""
    from rollcall.webhooks.deliverer import run_deliverer_process

    return [processes.Child(f"rollcall-deliverer-{n}", run_deliverer_process, (os.getpid(),)) for n in range(count)]


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


def _run_uvicorn(settings: config.Settings, host: str, port: int, workers: int, tls: tuple[str, str] | None) -> None:
    import uvicorn

    from rollcall.server import uvicorn_options

    uvicorn.run(
        "rollcall.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_graceful_shutdown=30,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
        **uvicorn_options(settings),
    )


def _count_metrics_across_processes() -> None:
    """Give this process and its children one fresh directory for Prometheus counters.

    Must run before prometheus_client is imported (it decides at import whether to count in
    memory or in files); an operator's own setting is kept.
    """
    import sys

    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import atexit
        import shutil
        import tempfile

        directory = tempfile.mkdtemp(prefix="rollcall-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def _serve_metrics(host: str, port: int, settings: config.Settings) -> None:
    """`/metrics` of this importer process (and its children), on their own address."""
    from prometheus_client import start_http_server

    from rollcall.monitoring import registry

    start_http_server(port, addr=host, registry=registry(db.Database.for_settings(settings)))


def _run_importer(parent: int | None = None) -> None:
    """One importer: imports until SIGTERM or SIGINT (or, as a child, until `parent` is gone),
    then finishes the call in hand."""
    from rollcall.callpower.source import CallPower
    from rollcall.calls.queue import Importer
    from rollcall.processes import name_this_process, watch_parent

    # Listen for the word to stop before anything else: `rollcall worker` may be stopped while
    # this process is still starting.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.set())
    if parent is not None:
        name_this_process("rollcall-import")
        watch_parent(parent, stopping)
    settings = settings_of_environment()
    logs.configure_logging(settings.log_level, settings.secrets())
    database = database_of(settings, page_cache_mib=db.IMPORTER_PAGE_CACHE_MIB)
    Importer(database, settings, CallPower.of(settings)).run(stopping)
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
    deliver: Annotated[
        bool,
        typer.Option(
            "--deliver/--no-deliver", help="Also run webhooks deliverers (ROLLCALL_WEBHOOK_DELIVERERS of them)."
        ),
    ] = True,
) -> None:
    """Run importers on their own (beside `rollcall serve`, or on other machines), and a deliverer."""
    _count_metrics_across_processes()
    settings = settings_of_environment()
    in_use = snapshots.hold_in_use(settings)  # noqa: F841 (held while this process lives: no restore meanwhile)
    database_of(settings).dispose()  # fail here, once, if the database is missing or not migrated
    if metrics_port is not None:
        _serve_metrics(metrics_host, metrics_port, settings)
    also = f" and {settings.webhook_deliverers} webhooks deliverer(s)" if deliver else ""
    typer.echo(f"{concurrency} importer(s){also} running; SIGTERM or Ctrl-C stops them", err=True)
    # One importer runs in this process; several run as children, each started again if it dies
    # (its claimed calls were released with its connection).
    importers = [processes.Child(f"rollcall-importer-{n}", _run_importer, (os.getpid(),)) for n in range(concurrency)]
    deliverers = _deliverer_children(settings.webhook_deliverers) if deliver else []
    supervisor = processes.Supervisor(
        [*(importers if concurrency > 1 else []), *deliverers],
        on_exit=lambda name, code: typer.echo(f"{name} exited ({code}); starting it again", err=True),
    )
    if concurrency == 1:
        supervisor.start()
        supervisor.watch_in_background()
        _run_importer()  # until SIGTERM: it finishes its call in hand
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: supervisor.request_stop())
        signal.signal(signal.SIGINT, lambda signum, frame: supervisor.request_stop())
        supervisor.start()
        supervisor.watch()  # until SIGTERM: each importer then finishes its call in hand and exits
    failed = supervisor.stop()
    for name, code in failed:
        typer.echo(f"{name} exited with {code} while stopping", err=True)
    if failed:
        raise SystemExit(1)


@keys_app.command("show")
def keys_show(
    admin: Annotated[bool, typer.Option("--admin", help="The staff token instead of the CallPower key.")] = False,
) -> None:
    """Print the generated CallPower API key (or, with --admin, the generated staff token)."""
    settings = settings_of_environment()
    setting = "admin_tokens" if admin else "callpower_api_keys"
    if settings.admin_tokens if admin else settings.callpower_api_keys:
        variable = config.environment_variable(setting)
        typer.echo(f"{variable} is set: those are the ones in use (this command does not repeat them).", err=True)
        return
    # Read with the driver alone (`glance`): SQLAlchemy and the models would take most of a second.
    from rollcall import glance

    try:
        secret = glance.read_stored_secret(settings.database_url, glance.ADMIN_TOKEN if admin else glance.CALLPOWER_KEY)
    except glance.NotReadable as error:
        raise CommandError(str(error)) from None
    if secret is None:
        raise CommandError("nothing generated yet: `rollcall serve` makes it on first start")
    typer.echo(secret)


@sessions_app.command("end")
def sessions_end() -> None:
    """Sign out every console session now, on every device (a lost laptop, a token that leaked)."""
    from rollcall.sessions import end_all_sessions

    with database_of().writing() as session:
        ended = end_all_sessions(session)
    typer.echo(f"{ended} console session{'' if ended == 1 else 's'} ended")
