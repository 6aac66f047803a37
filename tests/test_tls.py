"""HTTPS as stock CallPower needs it: rollcall's own TLS, and Caddy in front with the repo's Caddyfile.

The client is what CallPower's CRM sync ("Rogue" integration) runs: a `requests_toolbelt`
`BaseUrlSession` on `'https://' + domain`, its headers replaced by exactly the key header and
`Accept`, `post('/api/v1/callpower/call', json=...)`, success judged by `response.ok`. It trusts
a test CA made with `trustme`, given as `REQUESTS_CA_BUNDLE` (how a requests client is told to
trust a private CA; stock CallPower trusts certifi's public CAs).
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
import requests
import trustme
from requests_toolbelt import sessions

from rollcall.db import Database
from tests.helpers import (
    API_KEY,
    SEED_CALL,
    calls_in,
    free_port,
    map_seed_campaign,
    rollcall_process,
    serve_process,
    wait_for,
)

REPO = Path(__file__).resolve().parent.parent
CADDY = shutil.which("caddy")


@dataclass
class Certificates:
    ca: str  # the CA the client trusts
    fullchain: str  # leaf + intermediate, as an ACME client issues it
    key: str


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    """A root CA, an intermediate, and a certificate for localhost issued by the intermediate."""
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("localhost", "127.0.0.1")
    ca, fullchain, key = tmp_path / "ca.pem", tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    root.cert_pem.write_to_path(str(ca))
    fullchain.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    assert fullchain.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    return Certificates(str(ca), str(fullchain), str(key))


def callpower_session(domain: str) -> sessions.BaseUrlSession:
    """CallPower's RogueIntegration session, exactly (`trust` says which CA it trusts)."""
    session = sessions.BaseUrlSession(base_url="https://" + domain)
    session.headers = {"X-DS-Importer-API-Key": API_KEY, "Accept": "application/json"}  # type: ignore[assignment]
    return session


@pytest.fixture
def trust(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make requests trust this CA file (and only it)."""

    def trust(ca: str) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)

    return trust


def callpower_calls(count: int) -> list[dict[str, Any]]:
    """Calls as CallPower's `save_action` builds them (isoformat timestamps, null district)."""
    return [
        {
            **SEED_CALL,
            "mobile": f"+1555{n:07d}",
            "call_timestamp": f"2026-11-30T17:0{n % 10}:00.{n + 1:06d}",
            "campaign_target_district": None,
        }
        for n in range(count)
    ]


def deliver_as_callpower(domain: str, calls: list[dict[str, Any]]) -> None:
    """CallPower's sync run: each call posted, each answer 2xx; then, over HTTPS, HSTS on the
    answers and Secure session cookies."""
    with callpower_session(domain) as callpower:
        answers = [callpower.post("/api/v1/callpower/call", json=call) for call in calls]
        assert [answer.ok for answer in answers] == [True] * len(calls)
        assert answers[0].json() == {"success": {"code": 200, "message": "Received CallPower payload."}}
        sign_in = callpower.get("/console/sign-in")
        assert sign_in.headers["strict-transport-security"] == "max-age=31536000"
        assert "Secure" in sign_in.headers["set-cookie"]
    del answers, sign_in
    # A response that is still referenced keeps its socket open, and a TLS server's stop waits
    # for such a connection (asyncio's 30 s TLS shutdown); CallPower's sync job ends its run.
    gc.collect()


def plain_http_is_not_answered_200(port: int) -> None:
    try:
        answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/callpower/call", json=SEED_CALL, timeout=5)
    except httpx.TransportError:
        return  # the TLS server hung up on bytes that are not a TLS handshake
    assert answer.status_code != 200


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_stock_callpower_delivers_over_tls(
    database_url: str, database: Database, certificates: Certificates, tmp_path: Path, workers: int, trust: Any
) -> None:
    map_seed_campaign(database)
    trust(certificates.ca)
    process, url = serve_process(
        database_url,
        tmp_path / "serve.log",
        "--workers",
        str(workers),
        ca=certificates.ca,
        ROLLCALL_TLS_CERT=certificates.fullchain,
        ROLLCALL_TLS_KEY=certificates.key,
    )
    try:
        domain = url.removeprefix("https://")
        deliver_as_callpower(domain, callpower_calls(6))
        wait_for(lambda: [call.state for call in calls_in(database)] == ["imported"] * 6, timeout=30)
        plain_http_is_not_answered_200(int(domain.rsplit(":", 1)[1]))
        # A client that does not trust the certificate's CA (certifi's bundle) gets no answer.
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(f"{url}/api/v1/callpower/call", json=SEED_CALL, timeout=5, verify=certifi.where())
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    assert len(calls_in(database)) == 6


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"ROLLCALL_TLS_CERT": "fullchain"}, "--tls-key (ROLLCALL_TLS_KEY) is not set"),
        ({"ROLLCALL_TLS_KEY": "key"}, "--tls-cert (ROLLCALL_TLS_CERT) is not set"),
        ({"ROLLCALL_TLS_CERT": "fullchain", "ROLLCALL_TLS_KEY": "other_key"}, "cannot serve HTTPS with"),
        ({"ROLLCALL_TLS_CERT": "missing", "ROLLCALL_TLS_KEY": "key"}, "no TLS file at"),
    ],
    ids=["cert-only", "key-only", "key-of-another-certificate", "no-such-file"],
)
def test_tls_settings_that_cannot_work_stop_the_start(
    database_url: str, certificates: Certificates, tmp_path: Path, given: dict[str, str], message: str
) -> None:
    other_key = tmp_path / "other.pem"
    trustme.CA().issue_cert("localhost").private_key_pem.write_to_path(str(other_key))
    files = {
        "fullchain": certificates.fullchain,
        "key": certificates.key,
        "other_key": str(other_key),
        "missing": str(tmp_path / "nothing.pem"),
    }
    env = {name: files[value] for name, value in given.items()}
    process = rollcall_process(["serve", "--port", str(free_port())], database_url, tmp_path / "serve.log", **env)
    assert process.wait(60) == 1
    output = (tmp_path / "serve.log").read_text()
    assert message in output
    assert output.count("\n") == 1 and output.startswith("error: "), output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tls_flags_take_the_place_of_the_variables(
    database_url: str, certificates: Certificates, tmp_path: Path, trust: Any
) -> None:
    trust(certificates.ca)
    process, url = serve_process(
        database_url,
        tmp_path / "serve.log",
        "--tls-cert",
        certificates.fullchain,
        "--tls-key",
        certificates.key,
        ca=certificates.ca,
    )
    try:
        deliver_as_callpower(url.removeprefix("https://"), [SEED_CALL])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0


# -- Caddy in front (deploy/Caddyfile) ----------------------------------------------------------


@pytest.fixture
def caddy_binary() -> str:
    if CADDY is None:
        message = "no caddy on PATH: apt-get install -y caddy (the Caddy deployment test)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CADDY


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_caddy_in_front_with_the_repos_caddyfile(
    database_url: str, database: Database, caddy_binary: str, tmp_path: Path, trust: Any
) -> None:
    # For `localhost` Caddy issues the certificate from its own local CA instead of asking a
    # public ACME CA (which this machine cannot reach); everything else is the shipped file.
    map_seed_campaign(database)
    # Caddy forwards from loopback: rollcall believes its X-Forwarded-* because it is told to.
    server, upstream = serve_process(database_url, tmp_path / "serve.log", ROLLCALL_TRUSTED_PROXIES="127.0.0.1")
    https_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "ROLLCALL_DOMAIN": "localhost",
        "ROLLCALL_UPSTREAM": upstream.removeprefix("http://"),
        "ROLLCALL_HTTPS_PORT": str(https_port),
        "ROLLCALL_HTTP_PORT": str(http_port),
        "ROLLCALL_CADDY_ADMIN": "off",
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
        "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
    }
    log = (tmp_path / "caddy.log").open("wb")
    caddy = subprocess.Popen(
        [caddy_binary, "run", "--config", str(REPO / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root = tmp_path / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    trust(str(root))
    try:
        wait_for(lambda: (root.exists() and _listening(https_port)) or caddy.poll() is not None, timeout=30)
        assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()

        def answered() -> requests.Response | None:
            try:
                with callpower_session(f"localhost:{https_port}") as callpower:
                    return callpower.post("/api/v1/callpower/call", json=SEED_CALL)
            except requests.exceptions.SSLError:
                return None  # the certificate is being issued

        assert wait_for(answered, timeout=30).ok
        # rollcall sees the requests as HTTPS (X-Forwarded-Proto from Caddy on loopback).
        deliver_as_callpower(f"localhost:{https_port}", callpower_calls(2))
        # Plain HTTP on Caddy's HTTP port is sent to HTTPS, never answered 200.
        redirect = httpx.get(f"http://localhost:{http_port}/api/v1/callpower/call")
        assert redirect.status_code == 308 and redirect.headers["location"].startswith("https://")
        wait_for(lambda: [call.state for call in calls_in(database)] == ["imported"] * 3, timeout=30)
    finally:
        caddy.send_signal(signal.SIGTERM)
        caddy.wait(30)
        log.close()
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
