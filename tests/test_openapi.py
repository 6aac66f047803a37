"""The OpenAPI document against the running app: schemathesis finds no 500 and no answer that
disagrees with the document (bounded examples, so it runs in the normal suite)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.helpers import ADMIN_TOKEN, API_KEY, INTAKE_PATHS, SEED_CALL, RunningApp, check_intake_answer

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-DS-CallPower-API-Key": API_KEY}


def test_every_operation_agrees_with_the_document(app_factory: Any) -> None:
    # Driven through schemathesis' Python API: its pytest plugin does not run under pytest 9.
    # Its checks send wrong tokens on purpose (to see them refused): let it try more than 5.
    app = app_factory(sign_in_limit=(100_000, 60.0))
    schema = schemathesis.openapi.from_url(f"{app.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # A cursor is opaque: valid ones come from the server, so a generated one is always
            # refused (422). Cursors have their own tests in test_api.py.
            if case.query:
                case.query.pop("cursor", None)
            # Whether a repair passes depends on the call's stored body, whether a webhook URL is
            # taken on what its name resolves to, and whether a filter's text is a possible phone
            # number on libphonenumber's tables; and a report's period must not end before it
            # begins nor span more than a century, nor its grouping exceed 10,000 rows: no schema
            # can say any of these, so a schema-valid request may rightly be 422 there.
            path, method = case.operation.path, case.operation.method.upper()
            judged = (
                path in INTAKE_PATHS
                or path.endswith("/repair")
                or (path.startswith("/api/v3/webhooks") and method in ("POST", "PATCH"))
                or path in ("/api/v3/users", "/api/v3/reports/calls")
            )
            excluded = [positive_data_acceptance] if judged else []
            response = case.call_and_validate(base_url=app.url, headers=AUTH, excluded_checks=excluded)
            check_intake_answer(path, response)

        try:
            check()
        except Exception as failure:  # collect every operation's findings, then report them all
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)


def test_the_document_describes_every_route(app: RunningApp) -> None:
    document = httpx.get(f"{app.url}/openapi.json").json()
    intake = document["paths"]["/api/v1/callpower/call"]["post"]
    assert [p["name"] for p in intake["parameters"]] == ["X-DS-Importer-API-Key"]
    contract = document["paths"]["/api/partners/callpower/call"]["post"]
    assert [p["name"] for p in contract["parameters"]] == ["X-DS-CallPower-API-Key"]
    assert set(intake["responses"]) == {"200", "400", "401", "408", "413", "415", "422", "429", "503"}
    assert set(document["paths"]) >= {
        "/api/partners/callpower/call",
        "/api/v3/campaigns",
        "/api/v3/actions",
        "/api/v3/users",
        "/api/v3/signups",
        "/api/v3/posts",
        "/api/v3/callpower/calls",
        "/api/v3/callpower/campaigns",
        "/api/v3/callpower/calls/retry",
    }
    assert httpx.get(f"{app.url}/docs").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_docs_pages_load_nothing_from_another_host(app: RunningApp, page: Any) -> None:
    for path in ("/docs", "/redoc"):
        answer = httpx.get(f"{app.url}{path}")
        policy = answer.headers["content-security-policy"]  # the browser asks no other host for anything
        assert "default-src 'none'" in policy and "img-src 'self' data:" in policy and "http" not in policy
        html = answer.text
        assert "://" not in html, html  # no address of another host, in any attribute or script
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert len(assets) >= 2
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), asset
            assert httpx.get(f"{app.url}{asset}").status_code == 200, asset

    # In a browser where every other host is unreachable, Swagger UI renders every operation.
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{app.url}/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 20
    assert "/api/partners/callpower/call" in page.content()
    # ReDoc too (its bundle names a logo on its CDN: the policy keeps the browser from asking).
    page.goto(f"{app.url}/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    page.get_by_text("partners/callpower/call").first.wait_for(timeout=20_000)
    assert elsewhere == []


ACCEPTED_MOBILES = [
    "+15551231234",
    "(555) 123-1234",
    "555.123.1234",
    "555-123-1234",
    "1 555 123 1234",
    "+44 20 7946 0958",
]


def test_the_schemas_mobile_admits_every_format_the_intake_takes(app: RunningApp) -> None:
    """A client generated from the document must not refuse a number rollcall takes."""
    document = httpx.get(f"{app.url}/openapi.json").json()
    for path in INTAKE_PATHS:
        body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        mobile = body["properties"]["mobile"]
        for number in ACCEPTED_MOBILES:
            assert mobile["type"] == "string"
            assert "pattern" not in mobile or re.search(mobile["pattern"], number), number
            assert mobile.get("minLength", 0) <= len(number) <= mobile.get("maxLength", len(number)), number
    with app.client(headers={"X-DS-CallPower-API-Key": API_KEY}) as client:
        for n, number in enumerate(ACCEPTED_MOBILES):
            sent = {**SEED_CALL, "mobile": number, "call_timestamp": f"2017-11-07T18:54:{n:02d}"}
            assert client.post(INTAKE_PATHS[0], json=sent).status_code == 200, number
