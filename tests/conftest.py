"""Fixtures: real databases (a SQLite file; PostgreSQL when configured) and the real app over HTTP."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from rollcall.config import Settings
from rollcall.db import Database, migrate, normalize_url
from tests.helpers import ADMIN_TOKEN, API_KEY, RunningApp, start_app

POSTGRES_URL = os.environ.get("ROLLCALL_TEST_POSTGRES_URL")


# -- databases ------------------------------------------------------------------------------


def _postgres_admin_url() -> str:
    assert POSTGRES_URL
    return normalize_url(POSTGRES_URL)


class PostgresDatabases:
    """Fresh PostgreSQL databases for tests, each a copy of one migrated template."""

    def __init__(self, url: str) -> None:
        # pre-ping: a fault test restarts PostgreSQL, and this engine outlives it.
        self.admin = sa.create_engine(normalize_url(url), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.base_url = sa.engine.make_url(normalize_url(url))
        self.template = f"rollcall_template_{os.getpid()}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.template}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{self.template}"')
        template = Database(self.url_of(self.template))
        migrate(template)
        template.dispose()

    def url_of(self, name: str) -> str:
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def create(self) -> str:
        name = f"rollcall_test_{secrets.token_hex(6)}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.drop(self.template)
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL half skipped: set ROLLCALL_TEST_POSTGRES_URL to run it (CI does)")
    try:
        databases = PostgresDatabases(POSTGRES_URL)
    except sa.exc.OperationalError as error:
        # Set but unreachable is a failure, never a skip: CI must not go green without it.
        pytest.fail(f"ROLLCALL_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {error}")
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per test session, copied for each test (migrating takes longer)."""
    path = tmp_path_factory.mktemp("template") / "rollcall.db"
    database = Database(f"sqlite:///{path}")
    migrate(database)
    database.dispose()  # (the last connection to close folds the log into the file)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "rollcall.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    name = databases.create()
    yield databases.url_of(name)
    databases.drop(name)


@pytest.fixture
def postgres_url(postgres_databases: PostgresDatabases) -> Iterator[str]:
    """A migrated, empty PostgreSQL database (for tests that are about PostgreSQL only)."""
    name = postgres_databases.create()
    yield postgres_databases.url_of(name)
    postgres_databases.drop(name)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        callpower_api_keys=(API_KEY,),
        admin_tokens=(ADMIN_TOKEN,),
        import_poll_seconds=0.05,
        import_retry_base_seconds=0.05,
    )


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database.for_settings(settings)
    yield database
    database.dispose()


# -- the app over HTTP ----------------------------------------------------------------------


@pytest.fixture
def app_factory(settings: Settings) -> Iterator[Callable[..., RunningApp]]:
    """Start the real app (uvicorn on loopback) with these settings, or changed ones."""
    running: list[tuple[RunningApp, threading.Thread]] = []

    def start(run_importer: bool = True, **changes: Any) -> RunningApp:
        started = start_app(settings.model_copy(update=changes), run_importer=run_importer)
        running.append(started)
        return started[0]

    yield start
    for app, thread in running:
        app.server.should_exit = True
        thread.join(10)


@pytest.fixture
def app(app_factory: Callable[..., RunningApp]) -> RunningApp:
    return app_factory()


@pytest.fixture
def client(app: RunningApp) -> Iterator[httpx.Client]:
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        yield client


# -- a real browser (Debian's Chromium, driven by Playwright) ------------------------------------

CHROMIUM = os.environ.get("ROLLCALL_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium. Without it the browser tests skip, except in CI (`CI=true`): a failure."""
    if not shutil.which(CHROMIUM):
        message = f"no Chromium at {CHROMIUM}: apt-get install -y chromium (browser tests)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


# -- the CLI as a real process ----------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `rollcall ...` as its own process against the test database."""

    def run(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "ROLLCALL_DATABASE_URL": settings.database_url,
            "CALLPOWER_API_KEY": API_KEY,
            **(env or {}),
        }
        result = subprocess.run(
            [sys.executable, "-m", "rollcall", *args], capture_output=True, text=True, env=environment, timeout=60
        )
        if check and result.returncode != 0:
            pytest.fail(f"rollcall {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    return run


# -- tiers ------------------------------------------------------------------------------------------

_PROCESS_FIXTURES = {"cli", "service", "serving", "slow_served"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by what it needs, so a tier can be chosen (`pytest -m "not processes"`):
    `postgresql` (the PostgreSQL half), `browser` (Chromium), `processes` (`rollcall` run as a
    real process), `faults` (a disk filled, PostgreSQL restarted). tests/core has none of them."""
    import inspect

    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "postgresql" in params.values() or "postgres_url" in fixtures:
            item.add_marker(pytest.mark.postgresql)
        if fixtures & {"page", "browser"}:
            item.add_marker(pytest.mark.browser)
        function = getattr(item, "function", None)
        source = inspect.getsource(function) if function is not None else ""
        if fixtures & _PROCESS_FIXTURES or "serve_process(" in source or "rollcall_process(" in source:
            item.add_marker(pytest.mark.processes)
        if item.path.name == "test_faults.py":
            item.add_marker(pytest.mark.faults)
