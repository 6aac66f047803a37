"""The app factory: one FastAPI app with the intake, the writer and (optionally) the importer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from rollcall import __version__
from rollcall.callpower import intake
from rollcall.callpower.writer import CallWriter
from rollcall.config import Settings
from rollcall.credentials import CALLPOWER_KEY, ensure_secret
from rollcall.db import Database, DatabaseNotMigrated, schema_is_current
from rollcall.http import BodyLimit, install_error_handlers
from rollcall.logs import configure_logging
from rollcall.worker import Importer


@dataclass
class Services:
    """What the routes need, made once when the app starts."""

    settings: Settings
    database: Database
    writer: CallWriter
    importer: Importer | None
    callpower_keys: tuple[str, ...]


def create_app(settings: Settings, *, run_importer: bool = True) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings.database_url)
        if not schema_is_current(database):
            database.dispose()
            raise DatabaseNotMigrated("the database schema is not current: run `rollcall migrate`")
        # Never open: with no key in the environment, the key generated on first start is used.
        keys = settings.callpower_api_keys or (ensure_secret(database, CALLPOWER_KEY)[0],)
        importer = Importer(database, settings) if run_importer else None
        writer = CallWriter(database, on_stored=(lambda _: importer.wake()) if importer else None)
        app.state.services = Services(settings, database, writer, importer, keys)
        writer.start()
        if importer is not None:
            importer.start()
        try:
            yield
        finally:
            writer.stop()
            if importer is not None:
                importer.stop()
            database.dispose()

    app = FastAPI(
        title="rollcall",
        version=__version__,
        summary="CallPower calls become member activity: users, signups and phone-call posts.",
        lifespan=lifespan,
    )
    app.include_router(intake.router)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=settings.max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The factory `rollcall serve` hands to uvicorn (each worker process calls it)."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
