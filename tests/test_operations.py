"""Running it: health and readiness, metrics, request logs without secrets, limits, headers."""

from __future__ import annotations

import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command

from rollcall.config import Settings
from rollcall.db import Database, migrations_config
from tests.helpers import (
    ADMIN_TOKEN,
    API_KEY,
    CONTRACT_PATH,
    LEGACY_PATH,
    SEED_CALL,
    RunningApp,
    calls_in,
    map_seed_campaign,
    serve_process,
    wait_for,
)

STAFF = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" ([0-9.e+]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


def test_health_and_readiness_need_no_credential(app: RunningApp, database: Database) -> None:
    with app.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        with database.write_engine.begin() as connection:
            command.downgrade(migrations_config(connection), "-1")
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json() == {"status": "not ready", "reason": "the database schema is not current"}
        assert client.get("/healthz").status_code == 200
        with database.write_engine.begin() as connection:
            command.upgrade(migrations_config(connection), "head")
        assert client.get("/readyz").status_code == 200


def test_metrics_need_a_staff_token_or_an_allowed_address(app_factory: Any) -> None:
    app = app_factory()
    with app.client() as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 401
        assert client.get("/metrics", headers=STAFF).status_code == 200
    allowed = app_factory(metrics_allow_from=("127.0.0.0/8",))
    with allowed.client() as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_count_calls_by_answer_and_state(app: RunningApp, database: Database) -> None:
    map_seed_campaign(database)
    with app.client(headers=STAFF) as staff:
        # Counters live as long as the process (here: the test run), so compare before and after.
        before = staff.get("/metrics").text
        with app.client(headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
            for duration in range(3):
                assert client.post(LEGACY_PATH, json={**SEED_CALL, "call_duration": duration}).status_code == 200
            assert client.post(LEGACY_PATH, json={**SEED_CALL, "mobile": ""}).status_code == 422
            wrong = {"X-DS-Importer-API-Key": "x"}
            assert client.post(LEGACY_PATH, json=SEED_CALL, headers=wrong).status_code == 401
        wait_for(lambda: [c.state for c in calls_in(database)].count("imported") == 3)
        after = staff.get("/metrics").text

    def added(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert added("rollcall_intake_calls_total", path=LEGACY_PATH, status="200") == 3
    assert added("rollcall_intake_calls_total", path=LEGACY_PATH, status="422") == 1
    assert added("rollcall_intake_calls_total", path=LEGACY_PATH, status="401") == 1
    assert added("rollcall_import_outcomes_total", state="imported") == 3
    assert metric(after, "rollcall_calls", state="imported") == 3
    assert metric(after, "rollcall_calls", state="rejected") == 1
    assert metric(after, "rollcall_import_backlog") == 0
    assert "rollcall_import_duration_seconds_bucket" in after
    assert (
        'rollcall_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/api/v1/callpower/call",status="200"}'
        in after
    )


def test_metrics_add_up_across_api_processes(settings: Settings, tmp_path: Path) -> None:
    server, url = serve_process(settings.database_url, tmp_path / "serve.log", "--workers", "2")
    try:
        for n in range(40):
            # A new connection each time, so both processes answer some of them.
            with httpx.Client(
                base_url=url, headers={"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
            ) as client:
                assert client.post(LEGACY_PATH, json={**SEED_CALL, "call_duration": n}).status_code == 200
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
            texts = [client.get("/metrics").text for _ in range(6)]
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    assert {metric(text, "rollcall_intake_calls_total", path=LEGACY_PATH, status="200") for text in texts} == {40}


def test_every_request_is_logged_once_with_an_id_and_no_secret_or_mobile(settings: Settings, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    mobile = "+12025550123"
    server, url = serve_process(settings.database_url, log)
    try:
        with httpx.Client(base_url=url) as client:
            key = {"X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}
            answer = client.post(
                CONTRACT_PATH, json={**SEED_CALL, "mobile": mobile}, headers={**key, "X-Request-ID": "trace-42"}
            )
            assert answer.headers["x-request-id"] == "trace-42"
            generated = client.post(
                CONTRACT_PATH, json={**SEED_CALL, "mobile": "(202) 555-0199", "call_duration": 1}, headers=key
            )
            assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
            client.post(CONTRACT_PATH, json={**SEED_CALL, "mobile": "2025550177", "call_duration": ""}, headers=key)
            client.post(CONTRACT_PATH, json=SEED_CALL, headers={"X-DS-CallPower-API-Key": "wrong-" + API_KEY})
            client.get("/api/v3/users", params={"filter[mobile]": mobile}, headers=STAFF)
            client.get("/api/v3/posts", headers={"Authorization": "Bearer not-" + ADMIN_TOKEN})
            form = client.get("/console/sign-in").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            client.post("/console/sign-in", data={"csrf_token": csrf, "token": ADMIN_TOKEN})
            client.post("/console/sign-in", data={"csrf_token": csrf, "token": "guess-" + ADMIN_TOKEN})
            client.get("/console/calls", params={"mobile": mobile})
            client.get("/metrics", headers=STAFF)
        wait_for(
            lambda: '"state": "imported"' in log.read_text() or '"state":"unmapped"' in log.read_text(), timeout=10
        )
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0

    text = log.read_text()
    for secret in (API_KEY, ADMIN_TOKEN):
        assert secret not in text
    for number in ("2025550123", "2025550199", "2025550177", "202) 555", "5551231234"):
        assert number not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert len(requests) == 12
    assert all(re.fullmatch(r"[0-9a-zA-Z._:-]+", line["request_id"]) for line in requests)
    assert {line["status"] for line in requests} >= {200, 401, 422, 303}
    assert any(line["request_id"] == "trace-42" and line["path"] == CONTRACT_PATH for line in requests)
    assert all("?" not in line["path"] for line in requests)
    assert any(line.get("event") == "call.import" for line in lines)


def test_slow_body_is_cut_off(app_factory: Any, database: Database) -> None:
    app = app_factory(body_timeout_seconds=0.5)
    host, port = app.url.removeprefix("http://").split(":")
    body = json.dumps(SEED_CALL).encode()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST {CONTRACT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"X-DS-CallPower-API-Key: {API_KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        answer = connection.recv(4096).decode()  # (a blocking read: it comes at the deadline)
    assert answer.startswith("HTTP/1.1 408")
    assert '"code":408' in answer
    assert calls_in(database) == []


def test_rate_limit_per_key_answers_429_with_retry_after(app_factory: Any) -> None:
    app = app_factory(
        rate_limit=(3, 60.0),
        callpower_api_keys=("callpower-key-a-0123456789abcdefghijkl", "callpower-key-b-0123456789abcdefghijkl"),
    )
    with app.client() as client:
        answers = [
            client.post(
                CONTRACT_PATH,
                json={**SEED_CALL, "call_duration": n},
                headers={"X-DS-CallPower-API-Key": "callpower-key-a-0123456789abcdefghijkl"},
            )
            for n in range(4)
        ]
        other_key = client.post(
            CONTRACT_PATH, json=SEED_CALL, headers={"X-DS-CallPower-API-Key": "callpower-key-b-0123456789abcdefghijkl"}
        )
        staff = [client.get("/api/v3/campaigns", headers=STAFF) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json() == {"error": {"code": 429, "message": "Too many requests; slow down."}}
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 20
    assert other_key.status_code == 200
    assert [a.status_code for a in staff] == [200, 200, 200, 429]


def test_no_rate_limit_by_default(client: httpx.Client) -> None:
    statuses = {client.post(CONTRACT_PATH, json={**SEED_CALL, "call_duration": n}).status_code for n in range(30)}
    assert statuses == {200}


@pytest.mark.parametrize("path", ["/console/sign-in", "/api/v3/campaigns", CONTRACT_PATH, "/healthz"])
def test_security_headers(app: RunningApp, path: str) -> None:
    with app.client(headers={**STAFF, "X-DS-CallPower-API-Key": API_KEY, "X-DS-Importer-API-Key": API_KEY}) as client:
        answer = client.request("GET" if path != CONTRACT_PATH else "POST", path, json=SEED_CALL)
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    if path.startswith("/console"):
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_server_banner_does_not_advertise_versions(settings: Settings, tmp_path: Path) -> None:
    server, url = serve_process(settings.database_url, tmp_path / "serve.log")
    try:
        answer = httpx.get(f"{url}/healthz")
        missing = httpx.get(f"{url}/nowhere")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    assert "server" not in answer.headers
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": 404, "message": "Not found."}}
    assert "uvicorn" not in missing.text.lower()


def test_browsers_get_an_icon_rather_than_a_404(app: RunningApp) -> None:
    with app.client() as client:
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        assert icon.content.startswith(b"<svg")
        assert client.get("/console/static/favicon.svg").content == icon.content
