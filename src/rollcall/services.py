"""The seam between the interfaces and the service layer: what every route, page and the intake
are given, made once when the app starts, and the typed FastAPI dependency that hands it over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.types import Scope

from rollcall.calls.source import Source
from rollcall.calls.writer import Writer
from rollcall.config import Settings
from rollcall.db import Database
from rollcall.limits import NoLimit, RateLimiter, TokenThrottle
from rollcall.sessions import Sessions


@dataclass
class Services:
    settings: Settings
    database: Database
    source: Source  # where calls come from: CallPower's contract
    writer: Writer
    callpower_keys: tuple[str, ...]
    admin_tokens: tuple[str, ...]
    console_sessions: Sessions
    rate_limiter: RateLimiter | NoLimit
    token_throttle: TokenThrottle


def services_of(request: Request) -> Services:
    return services_in(request.scope)


def services_in(scope: Scope) -> Services:
    """The services of the app serving this ASGI scope (set by `app.create_api`'s lifespan)."""
    services = scope["app"].state.services
    assert isinstance(services, Services)
    return services


# A route's parameter `services: ServicesDep` is given the app's services.
ServicesDep = Annotated[Services, Depends(services_of)]
