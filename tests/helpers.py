"""What the test modules share: the credentials and the seed call, waiting for a state, the app
on loopback and `rollcall` as a real process, the intake's paths, reading what is stored,
mapping the seed campaign, storing and importing calls straight through the service layer,
breaking a table, a webhook receiver, signing in to the console. (Fixtures are in conftest.py.)"""

from __future__ import annotations

import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from rollcall.activity import service as activity
from rollcall.app import create_app
from rollcall.callpower.source import CallPower
from rollcall.calls import deliveries, results
from rollcall.calls import service as calls
from rollcall.calls import service as operations
from rollcall.calls.models import Call, CallState
from rollcall.calls.queue import Importer
from rollcall.calls.source import Source
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.reports import figures
from rollcall.server import uvicorn_options

API_KEY = "test-callpower-key-0123456789abcdefghij"
ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijk"

SEED_CALL: dict[str, Any] = {
    "mobile": "+15551231234",
    "status": "completed",
    "call_timestamp": "2017-11-07 18:54:10.829655",
    "call_duration": 36,
    "campaign_target_title": "Representative",
    "campaign_target_district": "FL-7",
    "callpower_campaign_id": 1,
    "campaign_target_name": "Mickey Mouse",
    "callpower_campaign_name": "DefendDreamers_Nov9_CongressCalls",
    "number_dialed_into": "+15554441234",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; fail the test with a clear message if it never is."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class RunningApp:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread | None = None

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> None:
        """Stop it as SIGTERM would (drained), and wait until it has."""
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)


def start_app(settings: Settings, *, run_importer: bool = True) -> tuple[RunningApp, threading.Thread]:
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, run_importer=run_importer),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **uvicorn_options(settings),  # the protocol, limits and proxies `rollcall serve` runs with
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive())
    if not server.started:
        pytest.fail("the app did not start")
    return RunningApp(f"http://127.0.0.1:{port}", settings, server, thread), thread


# -- real processes -------------------------------------------------------------------------


def rollcall_process(args: list[str], database_url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start `rollcall ARGS` as its own process, its output going to `log`."""
    environment = {
        **os.environ,
        "ROLLCALL_DATABASE_URL": database_url,
        "CALLPOWER_API_KEY": API_KEY,
        "ROLLCALL_ADMIN_TOKEN": ADMIN_TOKEN,
        **env,
    }
    output = log.open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "rollcall", *args], env=environment, stdout=output, stderr=output
        )
    finally:
        output.close()


def serve_process(
    database_url: str, log: Path, *args: str, ca: str | None = None, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`rollcall serve` on a free port, once it answers; returns the process and its base URL.

    With `ca` (the PEM of the CA that signed the certificate it serves), the URL is
    `https://localhost:PORT` and the readiness check trusts that CA.
    """
    port = free_port()
    process = rollcall_process(["serve", "--port", str(port), *args], database_url, log, **env)
    url = f"https://localhost:{port}" if ca else f"http://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=ca) if ca else True

    def ready() -> bool:
        try:
            return httpx.post(f"{url}/api/v1/callpower/call", timeout=1, verify=verify).status_code == 401
        except httpx.TransportError:
            assert process.poll() is None, log.read_text()
            return False

    wait_for(ready, timeout=60)
    return process, url


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # screenshots, for people to look at
CONTRACT_PATH = "/api/partners/callpower/call"
LEGACY_PATH = "/api/v1/callpower/call"


INTAKE_PATHS = ("/api/partners/callpower/call", "/api/v1/callpower/call")


def check_intake_answer(path: str, response: Any) -> None:
    """The schema says a mobile is any text (no pattern can say which libphonenumber reads): a
    schema-valid call is answered 200, or 422 naming the mobile and nothing else."""
    if path in INTAKE_PATHS and response.status_code == 422:
        fields = response.json()["error"].get("fields", {})
        assert set(fields) == {"mobile"}, response.text


def count(database: Database, model: Any, *where: Any) -> int:
    with database.reading() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0


def calls_in(database: Database) -> list[Call]:
    with database.reading() as session:
        return list(session.scalars(sa.select(Call).order_by(Call.id)))


def call_state(database: Database, call_id: int) -> Call:
    with database.reading() as session:
        return calls.get_call(session, call_id)


def map_seed_campaign(database: Database, callpower_campaign_id: int = 1) -> int:
    """A campaign with an action that receives this CallPower campaign's calls; the action's id."""
    with database.writing() as session:
        campaign = activity.create_campaign(session, internal_title="Defend Dreamers")
        action, _ = operations.add_action(
            session, campaign_id=campaign.id, name="Call Congress", callpower_campaign_id=callpower_campaign_id
        )
        return action.id


def store(database: Database, *records: dict[str, Any]) -> list[int]:
    """Store valid call records as the intake would; their call ids."""
    with database.writing() as session:
        batch = [CallPower("US").check(r, raw="{}", content_type="application/json") for r in records]
        assert all(d.document is not None for d in batch), [d.errors for d in batch]
        deliveries.store_deliveries(session, batch, CallPower())
    return [c.id for c in calls_in(database)][-len(records) :]


def import_all(database: Database, settings: Settings) -> None:
    """Import every waiting call. An app of the test may be importing too (its importer wakes on
    PostgreSQL's NOTIFY): calls it has claimed are skipped here, so this waits until none is
    waiting any more, i.e. until that importer has committed them."""
    importer = Importer(database, settings, CallPower())
    deadline = time.monotonic() + 30
    while True:
        if importer.import_batch():
            continue
        if not _still_waiting(database):
            return
        assert time.monotonic() < deadline, "calls still waiting after 30 s"
        time.sleep(0.005)  # another importer holds them: until it commits


def _still_waiting(database: Database) -> bool:
    with database.reading() as session:
        return session.scalar(sa.select(Call.id).where(Call.state == CallState.RECEIVED).limit(1)) is not None


def store_and_import(database: Database, settings: Settings, *records: dict[str, Any]) -> None:
    store(database, *records)
    import_all(database, settings)


def break_posts(database: Database, table: str = "posts", message: str | None = None, when: str = "TRUE") -> None:
    """Make every insert into posts (or `table`) fail, as a full disk or a bug half-way through an
    import would (or only the rows `when` holds for, SQL over `NEW`); the error says `message`
    (by default "<table> broken")."""
    text = (message or f"{table} broken").replace("'", "''")
    with database.writing() as session:
        if database.dialect == "sqlite":
            session.execute(
                sa.text(
                    f"CREATE TRIGGER broken_{table} BEFORE INSERT ON {table} WHEN {when}"
                    f" BEGIN SELECT RAISE(ABORT, '{text}'); END"
                )
            )
        else:
            session.execute(
                sa.text(
                    f"CREATE FUNCTION broken_{table}() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION '{text}'; END $$"
                )
            )
            trigger = f"CREATE TRIGGER broken_{table} BEFORE INSERT ON {table} FOR EACH ROW WHEN ({when})"
            session.execute(sa.text(f"{trigger} EXECUTE FUNCTION broken_{table}()"))


def mend_posts(database: Database, table: str = "posts") -> None:
    with database.writing() as session:
        session.execute(
            sa.text(f"DROP TRIGGER broken_{table}" + ("" if database.dialect == "sqlite" else f" ON {table}"))
        )


# -- a webhook receiver on loopback -----------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """A real HTTP server on loopback that records every request and answers what it is told:
    a status; nothing at all until it is stopped (`hang`); its status line a byte every `drip`
    seconds; or a 200 with a body that never ends (`endless`, counting what it got out)."""

    def __init__(self, port: int | None = None) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.statuses: list[int] = []  # answered first, one per request, before `status`
        self.delay = 0.0
        self.drip = 0.0
        self.endless = False
        self.endless_sent = 0
        self.hang = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-body: no request, as any server sees it
                    self.close_connection = True
                    return
                if receiver.stopping.is_set():  # stopped: a kept-alive connection gets no answer
                    self.close_connection = True
                    return
                with receiver._lock:
                    receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                if receiver.hang.is_set():
                    receiver.stopping.wait(60)
                    return
                if receiver.drip:  # the status line a byte at a time, never finished
                    for byte in b"HTTP/1.1 200 OK\r\n":
                        if receiver.stopping.wait(receiver.drip) or not self._write(bytes([byte])):
                            return
                    receiver.stopping.wait(60)
                    return
                if receiver.endless:  # 200, then a body that never ends
                    self.send_response(200)
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    chunk = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
                    while not receiver.stopping.is_set() and self._write(chunk):
                        receiver.endless_sent += 65536
                    self.close_connection = True
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def _write(self, data: bytes) -> bool:
                try:
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:  # the sender hung up
                    return False
                return True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.stopping = threading.Event()

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # (5 by default: the 6th connection at once waits for a SYN retry, 1 s)

        self.server = Server(("127.0.0.1", port or 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [request.event for request in self.received]

    def ids(self) -> list[str]:
        with self._lock:
            return [request.headers["webhook-id"] for request in self.received]

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def sign_in_over_http(client: Any) -> None:
    """Sign an HTTP client in to the console with the staff token (its session cookie is kept)."""
    form = client.get("/console/sign-in").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN})


def sign_in(page: Any, url: str) -> None:
    """Sign the browser in to the console at `url` with the staff token."""
    page.goto(f"{url}/console/")
    assert "/console/sign-in" in page.url
    page.fill("#token", ADMIN_TOKEN)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{url}/console/")


def results_equal_recount(database: Database, source: Source | None = None) -> bool:
    """The campaign results as kept equal a count over the posts (read by `source`, CallPower's
    by default)."""
    with database.reading() as session:
        kept = figures.kept(session)
        posts = [row for batch in results.posts(session) for row in batch]
        zones = figures.zones_of(session, {row[1] for row in posts}, locked=False)
        counted = figures.recount(posts, (source or CallPower()).reported, zones)
    return kept == counted
