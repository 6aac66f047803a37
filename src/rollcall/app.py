"""The app factory: one FastAPI app with the intake, the writer and (optionally) the importer."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rollcall import __version__, operations
from rollcall.activity import views as activity_views
from rollcall.callpower import intake
from rollcall.callpower import views as callpower_views
from rollcall.callpower.source import CallPower
from rollcall.calls import views as calls_views
from rollcall.calls.queue import Importer
from rollcall.calls.signals import CALLS_CHANNEL
from rollcall.calls.writer import CallWriter, Writer
from rollcall.calls.writer_client import RemoteWriter
from rollcall.config import Settings
from rollcall.console import activity_pages, rendering, results_pages, webhook_pages
from rollcall.console import views as console_views
from rollcall.credentials import ADMIN_TOKEN, CALLPOWER_KEY, CONSOLE_SECRET, ensure_secret
from rollcall.db import Database, DatabaseNotMigrated, schema_is_current
from rollcall.http import BodyLimit, RequestLog, install_error_handlers
from rollcall.limits import NoLimit, RateLimiter, TokenThrottle
from rollcall.logs import configure_logging
from rollcall.members import views as member_views
from rollcall.processes import stop_when_orphaned
from rollcall.reports import views as report_views
from rollcall.services import Services
from rollcall.sessions import Sessions
from rollcall.webhooks import views as webhook_views


def create_app(settings: Settings, *, run_importer: bool = True) -> ASGIApp:
    """The service as one ASGI app: the request log and body limit in front of everything, the
    intake's fast path, then the FastAPI app (staff API, console, operations, OpenAPI)."""
    api = create_api(settings, run_importer=run_importer)
    return RequestLog(BodyLimit(intake.IntakeFastPath(api), settings.max_body_bytes, settings.body_timeout_seconds))


def create_api(settings: Settings, *, run_importer: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database.for_settings(settings)
        if not schema_is_current(database):
            database.dispose()
            raise DatabaseNotMigrated("the database schema is not current: run `rollcall migrate`")
        # Never open: with no key or token in the environment, the one generated on first start is used.
        keys = settings.callpower_api_keys or (ensure_secret(database, CALLPOWER_KEY)[0],)
        tokens = settings.admin_tokens or (ensure_secret(database, ADMIN_TOKEN)[0],)
        source = CallPower.of(settings)
        writer: Writer
        if settings.writer_socket:
            # `rollcall serve`: the writer process stores the calls and runs the importer.
            writer = RemoteWriter(settings.writer_socket)
        else:
            # On a thread of this process, with the importer in the gaps between deliveries.
            importer = Importer(database, settings, source) if run_importer else None
            writer = CallWriter(database, source, importer)
        sessions = Sessions(ensure_secret(database, CONSOLE_SECRET)[0], database)
        limiter = RateLimiter(*settings.rate_limit) if settings.rate_limit else NoLimit()
        app.state.services = Services(
            settings,
            database,
            source,
            writer,
            keys,
            tokens,
            sessions,
            limiter,
            TokenThrottle(*settings.sign_in_limit),
        )
        # Calls released by any interface (mapping, retries, repairs) are imported at once.
        database.listen(CALLS_CHANNEL, writer.wake_importer)
        writer.start()
        # Everything made so far (modules, compiled statements, schemas) lives as long as the
        # process. Left in the collector's oldest generation, each full collection walked all of
        # it and stalled every request in flight: the intake's p99 went from ~30 to ~80 ms.
        gc.freeze()
        watchdog = None
        if settings.supervisor_pid and settings.supervisor_pid != os.getpid():
            # A worker of `serve --workers N` whose `serve` was killed drains and exits: its writer
            # process is gone too, and the port must be free for the next start.
            watchdog = asyncio.create_task(stop_when_orphaned(settings.supervisor_pid))
        try:
            yield
        finally:
            if watchdog is not None:
                watchdog.cancel()
            writer.stop()
            database.dispose()

    # /docs and /redoc with their scripts and styles served from the fastapi-offline package
    # (Swagger UI 5, which reads OpenAPI 3.1): the docs work with no internet and load nothing
    # from a CDN.
    app = FastAPIOffline(
        static_url="/docs/static",
        # Swagger UI would show a badge from validator.swagger.io, sending it the document's URL.
        swagger_ui_parameters={"validatorUrl": None},
        title="rollcall",
        version=__version__,
        summary="CallPower calls become member activity: users, signups and phone-call posts.",
        lifespan=lifespan,
        # rollcall has its own metrics and logs; FastAPI's OpenTelemetry hooks cost time on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.include_router(intake.router)
    app.include_router(calls_views.router)
    app.include_router(callpower_views.router)
    app.include_router(activity_views.router)
    app.include_router(member_views.router)
    app.include_router(webhook_views.router)
    app.include_router(report_views.router)
    app.include_router(console_views.router)
    app.include_router(activity_pages.router)
    app.include_router(webhook_pages.router)
    app.include_router(results_pages.router)
    app.include_router(operations.router)
    app.mount(
        "/console/static", StaticFiles(directory=str(resources.files("rollcall") / "console" / "static")), "static"
    )
    install_error_handlers(app, page=rendering.error_page)
    for route in app.routes:
        if isinstance(route, Route) and route.path in DOCS_PAGES:
            route.app = _with_docs_policy(route.app)
    return app


# /docs and /redoc: only this server may be asked for anything (ReDoc's bundle would fetch its
# logo from its CDN; Swagger UI and ReDoc run inline scripts, and ReDoc a worker from a blob).
DOCS_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")
DOCS_POLICY = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _with_docs_policy(page: ASGIApp) -> ASGIApp:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"content-security-policy", DOCS_POLICY)]
            await send(message)

        await page(scope, receive, with_policy)

    return guarded


def app_from_environment() -> ASGIApp:
    """The factory `rollcall serve` hands to uvicorn (each worker process calls it)."""
    configure_logging()  # first: a failure to read the settings is logged through the chain too
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.secrets())
    return create_app(settings)
