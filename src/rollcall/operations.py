"""Routes for running the service: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import ipaddress
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import Response

from rollcall.api import check_staff_token, client_address
from rollcall.db import schema_is_current
from rollcall.http import json_response

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive", responses={200: {"description": '`{"status": "ok"}`'}})
async def healthz() -> Response:
    return json_response({"status": "ok"})


_FAVICON = (resources.files("rollcall") / "console" / "static" / "favicon.svg").read_bytes()


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """The icon browsers ask for on every page (an SVG, which they all draw)."""
    return Response(_FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get(
    "/readyz",
    summary="The database is reachable and its schema current",
    responses={200: {"description": '`{"status": "ready"}`'}, 503: {"description": "Not ready, and why."}},
)
async def readyz(request: Request) -> Response:
    database = request.app.state.services.database

    def check() -> str | None:
        try:
            return None if schema_is_current(database) else "the database schema is not current"
        except Exception:
            return "the database cannot be reached"

    problem = await run_in_threadpool(check)
    if problem:
        return json_response({"status": "not ready", "reason": problem}, status_code=503)
    return json_response({"status": "ready"})


def _allowed_address(request: Request) -> bool:
    networks = request.app.state.services.settings.metrics_allow_from
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in networks)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Needs a staff bearer token, unless the client's address is in ROLLCALL_METRICS_ALLOW_FROM.",
    responses={200: {"content": {"text/plain": {}}}, 401: {"description": "No token and not an allowed address."}},
)
async def metrics(request: Request) -> Any:
    if not _allowed_address(request):
        scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
        check_staff_token(request, token if scheme.lower() == "bearer" else None)
    from rollcall.monitoring import exposition

    body, content_type = await run_in_threadpool(exposition, request.app.state.services.database)
    return Response(body, media_type=content_type)
