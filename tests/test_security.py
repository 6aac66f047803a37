"""Trust, tried as an attacker and a careless partner would: nothing secret or personal in any
log line whatever crashes, one address policy for webhooks, sessions that end, credentials that
are long and used once, slow clients cut off, every process's metrics counted."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import trustme

from rollcall.calls.models import Call
from rollcall.credentials import CONSOLE_SECRET, stored_secret
from rollcall.db import Database
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    CONTRACT_PATH,
    LEGACY_PATH,
    SEED_CALL,
    Receiver,
    break_posts,
    map_seed_campaign,
    serve_process,
    wait_for,
)

STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
KEYS = {"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
MEMBER = "+15559876543"
FORMS_OF_MEMBER = (MEMBER, "5559876543", "(555) 987-6543", "555-987-6543")
OPEN = {
    "ROLLCALL_WEBHOOKS_ALLOW_HTTP": "true",
    "ROLLCALL_WEBHOOKS_ALLOW_PRIVATE": "true",
    "ROLLCALL_WEBHOOK_POLL_SECONDS": "0.05",
    "ROLLCALL_WEBHOOK_LEASE_SECONDS": "3",
    "ROLLCALL_WEBHOOK_TIMEOUT_SECONDS": "1",
    "ROLLCALL_IMPORT_POLL_SECONDS": "0.05",
}


def member_call(second: int, **changes: Any) -> dict[str, Any]:
    return {**SEED_CALL, "mobile": "(555) 987-6543", "call_timestamp": f"2026-12-01T10:00:{second:02d}", **changes}


def metric(url: str, line: str) -> float:
    found = re.search(rf"^{re.escape(line)} ([0-9.e+]+)$", httpx.get(f"{url}/metrics", headers=STAFF).text, re.M)
    return float(found.group(1)) if found else 0.0


# -- nothing secret in any log ---------------------------------------------------------------


def test_crashes_in_every_process_log_no_secret_and_no_number(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    """An unhandled error in the API (a staff route, a console page), the intake, the writer, the
    importer and the deliverer, each with secrets and a member's number in scope and the number in
    the error's own text (a library's message), and a multipart part whose odd header carries the
    number: everything `rollcall serve` writes on stdout and stderr is JSON lines, none holding a
    key, token, secret, session or CSRF value, or any form of the number."""
    map_seed_campaign(database)
    log = tmp_path / "serve.log"
    receiver = Receiver()
    process, url = serve_process(database_url, log, **OPEN)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            # A console session and its CSRF token, a webhook and its secret, a member.
            form = client.get("/console/sign-in").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN})
            cookie = client.cookies["rollcall_console"]
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/").text).group(1)  # type: ignore[union-attr]
            hook = client.post(
                "/api/v3/webhooks", json={"url": receiver.url, "events": ["call.rejected"]}, headers=STAFF
            ).json()["data"]
            assert client.post(LEGACY_PATH, json=member_call(1), headers=KEYS).status_code == 200
            wait_for(lambda: client.get("/api/v3/posts", headers=STAFF).json()["data"], timeout=30)
            with database.reading() as session:
                secrets = [stored_secret(session, name) for name in ("dedup_secret", CONSOLE_SECRET)]

            # The number in the errors' own text, as a library's message would carry it.
            crash = f"crashed near {MEMBER}, that is (555) 987-6543"
            break_posts(database, "posts", crash)  # the importer
            break_posts(database, "campaigns", crash)  # a staff route
            break_posts(database, "webhook_attempts", crash)  # the deliverer's step
            assert client.post(LEGACY_PATH, json=member_call(2), headers=KEYS).status_code == 200
            assert client.post("/api/v3/campaigns", json={"internal_title": "x"}, headers=STAFF).status_code == 500
            rejected = member_call(3, campaign_target_title=None)  # rejected: a call.rejected event to deliver
            assert client.post(LEGACY_PATH, json=rejected, headers=KEYS).status_code == 422
            wait_for(lambda: receiver.received, timeout=30)
            # A multipart part whose header carries partner text (python-multipart logs it).
            boundary = "b0undary"
            body = (
                f"--{boundary}\r\nContent-Disposition: form-data; name=mobile\r\n"
                f"Content-Transfer-Encoding: {MEMBER}\r\n\r\n{MEMBER}\r\n--{boundary}--\r\n"
            )
            multipart = {**KEYS, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            assert client.post(CONTRACT_PATH, content=body, headers=multipart).status_code == 422
            # A console page over a stored call the page cannot show (a record that is no object).
            with database.writing() as session:
                session.execute(sa.update(Call).where(Call.id == 1).values(record=f"{MEMBER} (555) 987-6543"))
            assert client.get("/console/calls/1").status_code == 500
            # The intake and the writer: the call cannot be stored.
            break_posts(database, "calls", crash)
            assert client.post(LEGACY_PATH, json=member_call(4), headers=KEYS).status_code == 503
            # Not HTTP at all (uvicorn's own line).
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as raw:
                raw.sendall(f"GET /{MEMBER} HTTP/1.1\r\nHost: x\r\nX-Bad\x01: {ADMIN_TOKEN}\r\n\r\n".encode())
                raw.recv(1024)
            wait_for(lambda: "deliverer.step_failed" in log.read_text(), timeout=30)
            wait_for(lambda: "call.import_failed" in log.read_text(), timeout=30)
    finally:
        receiver.stop()
        process.send_signal(signal.SIGTERM)
        process.wait(60)

    text = log.read_text()
    for event in ("request.crashed", "writer.commit_failed", "intake.not_stored", "call.import_failed"):
        assert event in text, event  # each crash happened, and was logged
    assert "[number]" in text  # the numbers in the errors' text were there, and are gone
    assert "Unknown Content-Transfer-Encoding" in text  # python-multipart's line, through the chain
    for line in text.splitlines():
        if line.startswith("rollcall serving") or line.startswith("Generated") or line.startswith("Using the"):
            continue  # the CLI's own words on its terminal
        json.loads(line)  # every log line is JSON, whoever wrote it
    forbidden = [API_KEY, ADMIN_TOKEN, cookie, csrf, hook["secret"], *secrets, *FORMS_OF_MEMBER]
    for value in forbidden:
        assert value not in text, value


# -- every process's metrics reach /metrics --------------------------------------------------------


def test_every_process_of_serve_counts_into_metrics(database_url: str, database: Database, tmp_path: Path) -> None:
    """Through `rollcall serve` itself (one API process, the default): request durations, intake
    answers by status (401 included) and failed sign-ins from the API process, commits from the
    writer, import outcomes from its importer, deliveries from the deliverer."""
    map_seed_campaign(database)
    receiver = Receiver()
    process, url = serve_process(database_url, tmp_path / "serve.log", **OPEN)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post("/api/v3/webhooks", json={"url": receiver.url, "events": ["post.created"]}, headers=STAFF)
            assert client.post(LEGACY_PATH, json=member_call(1), headers=KEYS).status_code == 200
            assert (
                client.post(LEGACY_PATH, json=member_call(2), headers={"X-DS-Importer-API-Key": "x" * 40}).status_code
                == 401
            )
            form = client.get("/console/sign-in").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            assert client.post("/console/sign-in", data={"csrf_token": csrf, "token": "y" * 40}).status_code == 401
            wait_for(lambda: receiver.received, timeout=30)
            wanted = [
                f'rollcall_intake_calls_total{{path="{LEGACY_PATH}",status="200"}}',
                f'rollcall_intake_calls_total{{path="{LEGACY_PATH}",status="401"}}',
                'rollcall_console_sign_in_failures_total{reason="wrong token"}',
                f'rollcall_http_request_duration_seconds_count{{method="POST",route="{LEGACY_PATH}",status="401"}}',
                "rollcall_writer_commit_duration_seconds_count",
                'rollcall_import_outcomes_total{state="imported"}',
                'rollcall_webhook_deliveries_total{outcome="delivered",webhook="1"}',
            ]
            wait_for(lambda: all(metric(url, line) >= 1 for line in wanted), timeout=15)
    finally:
        receiver.stop()
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


# -- sessions and credentials -------------------------------------------------------------------


@contextlib.contextmanager
def signed_in_client(url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in to the console, and its session's CSRF token."""
    with httpx.Client(base_url=url, timeout=30) as client:
        form = client.get("/console/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        assert client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN}).status_code == 303
        page = client.get("/console/")
        assert page.status_code == 200
        yield client, re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def opens(url: str, cookie: str) -> bool:
    """Whether a console cookie, replayed by someone else, still opens a page."""
    answer = httpx.get(f"{url}/console/", cookies={"rollcall_console": cookie})
    return answer.status_code == 200


def test_signing_out_ends_the_session_on_the_server(app: Any) -> None:
    with signed_in_client(app.url) as (client, csrf):
        cookie = client.cookies["rollcall_console"]
        assert opens(app.url, cookie)
        assert client.post("/console/sign-out", data={"csrf_token": csrf}).status_code == 303
    assert not opens(app.url, cookie)  # the old cookie, kept by someone, opens nothing


def test_staff_can_end_every_session_at_once(app: Any) -> None:
    with signed_in_client(app.url) as (first, _), signed_in_client(app.url) as (second, csrf):
        cookies = [first.cookies["rollcall_console"], second.cookies["rollcall_console"]]
        assert all(opens(app.url, cookie) for cookie in cookies)
        ended = second.post("/console/sessions/end-all", data={"csrf_token": csrf}, follow_redirects=True)
        assert "2 console sessions ended: sign in again." in ended.text
    assert not any(opens(app.url, cookie) for cookie in cookies)


def test_the_cli_ends_every_session(app: Any, cli: Any) -> None:
    with signed_in_client(app.url) as (client, _):
        cookie = client.cookies["rollcall_console"]
        assert cli("sessions", "end").stdout.strip() == "1 console session ended"
    assert not opens(app.url, cookie)


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"done": "retried"}, "Sent back to the importer."),
        (
            {"done": "retried-all", "done_calls": "3", "done_state": "failed"},
            "3 failed calls sent back to the importer.",
        ),
        ({"done": "<script>alert(1)</script>"}, None),
        ({"done": "Your account is locked: call +1 555 0100"}, None),
        ({"done": "retried-all", "done_calls": "3", "done_state": "<b>all</b>"}, None),
        ({"done": "retried-all", "done_calls": "3"}, None),  # a value missing
    ],
)
def test_notices_are_sentences_rollcall_wrote_never_text_from_the_address(
    app: Any, query: dict[str, str], shown: str | None
) -> None:
    with signed_in_client(app.url) as (client, _):
        page = client.get("/console/", params=query).text
    notice = re.search(r'<p class="flash" role="status">([^<]*)</p>', page)
    assert (notice.group(1) if notice else None) == shown
    assert "<script>alert" not in page and "+1 555 0100" not in page


def test_wrong_bearer_tokens_are_throttled_per_address_and_counted(app_factory: Any) -> None:
    """Like the console's sign-in (and sharing its count): after 3 wrong tokens within the window
    (2 s here) every request from the address waits, the right token too; then it passes."""
    app = app_factory(sign_in_limit=(3, 2.0))
    with httpx.Client(base_url=app.url) as client:
        before = metric(app.url, 'rollcall_api_token_failures_total{reason="wrong token"}')
        wrong = {"Authorization": "Bearer " + "z" * 40}
        assert [client.get("/api/v3/posts", headers=wrong).status_code for _ in range(3)] == [401] * 3
        throttled = client.get("/api/v3/posts", headers=STAFF)
        assert throttled.status_code == 429 and 1 <= int(throttled.headers["retry-after"]) <= 2
        assert client.get("/api/v3/posts").status_code == 429  # no token: no way round it either
        wait_for(lambda: client.get("/api/v3/posts", headers=STAFF).status_code == 200, timeout=5, interval=0.25)
        after = metric(app.url, 'rollcall_api_token_failures_total{reason="wrong token"}')
    assert after - before == 3


@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)], ids=["no-proxy", "behind-a-proxy"])
def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(app_factory: Any, trusted: tuple[str, ...]) -> None:
    """A client that sends its own X-Forwarded-For cannot spread its guesses over made-up
    addresses; behind a proxy that rollcall is told to trust, the proxy's word names the client."""
    app = app_factory(sign_in_limit=(2, 60.0), trusted_proxies=trusted)
    wrong = {"Authorization": "Bearer " + "z" * 40}
    with httpx.Client(base_url=app.url) as client:
        statuses = [
            client.get("/api/v3/posts", headers={**wrong, "X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(4)
        ]
    assert statuses == ([401] * 4 if trusted else [401, 401, 429, 429])


# -- slow clients get a deadline ------------------------------------------------------------------

SLOW = {"ROLLCALL_HEADER_TIMEOUT_SECONDS": "1", "ROLLCALL_BODY_TIMEOUT_SECONDS": "1", "ROLLCALL_MAX_CONNECTIONS": "20"}


@pytest.fixture(params=["http", "https"])
def slow_served(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[str, int, ssl.SSLContext | None]]:
    """`rollcall serve` with 1 s deadlines and 20 connections, with and without its own TLS: the
    host, the port, and the TLS context a client trusts it with."""
    tls: list[str] = []
    context = None
    if request.param == "https":
        authority = trustme.CA()
        issued = authority.issue_cert("localhost", "127.0.0.1")
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
        issued.private_key_pem.write_to_path(str(key))
        tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
        context = ssl.create_default_context()
        authority.configure_trust(context)
        ca = tmp_path / "ca.pem"
        authority.cert_pem.write_to_path(str(ca))
    process, url = serve_process(database_url, tmp_path / "serve.log", *tls, ca=str(ca) if tls else None, **SLOW)
    try:
        yield "localhost" if tls else "127.0.0.1", int(url.rsplit(":", 1)[1]), context
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


def connect(host: str, port: int, context: ssl.SSLContext | None) -> socket.socket:
    raw = socket.create_connection((host, port), timeout=10)
    return context.wrap_socket(raw, server_hostname=host) if context else raw


def until_closed(sock: socket.socket, trickle: bytes = b"", every: float = 0.2) -> tuple[float, bytes]:
    """Send `trickle` a byte every `every` seconds (then nothing) until the server answers or
    closes; how long that took, and what it said."""
    started = time.monotonic()
    sock.settimeout(every)
    heard = b""
    for byte in [*trickle, *([None] * 100)]:
        try:
            if byte is not None:
                sock.sendall(bytes([byte]))
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            break
        heard += chunk
        if not chunk or b"\r\n\r\n" in heard:
            break
    return time.monotonic() - started, heard


def test_headers_that_trickle_in_are_cut_off_at_their_deadline(slow_served: Any) -> None:
    host, port, context = slow_served
    with connect(host, port, context) as sock:
        sock.sendall(b"POST /api/v1/callpower/call HTTP/1.1\r\nHost: x\r\nX-DS-Importer-API-")
        took, heard = until_closed(sock, b"Key: " + API_KEY.encode() * 5)
    assert took < 3  # one deadline for all the headers (1 s), not one per byte
    assert heard.startswith(b"HTTP/1.1 408")


def test_a_body_that_trickles_in_is_cut_off_at_its_deadline(slow_served: Any) -> None:
    host, port, context = slow_served
    body = json.dumps(SEED_CALL).encode()
    with connect(host, port, context) as sock:
        sock.sendall(
            b"POST /api/v1/callpower/call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-DS-Importer-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        took, heard = until_closed(sock, body)
    assert took < 3  # the whole body within 1 s, not 1 s between bytes
    assert heard.startswith(b"HTTP/1.1 408")


def test_idle_connections_are_bounded_and_let_go(slow_served: Any) -> None:
    """Connections that say nothing are closed at the header deadline; while 25 of them are
    open, more than the limit (20), a request is answered 503 rather than queued behind them."""
    host, port, context = slow_served
    idle = [connect(host, port, context) for _ in range(25)]
    try:
        with connect(host, port, context) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 503")
        for sock in idle:
            took, heard = until_closed(sock)
            assert heard == b"" and took < 3
    finally:
        for sock in idle:
            sock.close()
    with connect(host, port, context) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_headers_too_large_are_refused(slow_served: Any) -> None:
    host, port, context = slow_served
    with connect(host, port, context) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        _, heard = until_closed(sock)
    assert heard.startswith(b"HTTP/1.1 431")
