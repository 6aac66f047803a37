"""The one settings object, read from the environment once at start and passed down."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./rollcall.db"


class ConfigError(Exception):
    """A setting in the environment cannot be used."""


def _split_secrets(value: str | None) -> tuple[str, ...]:
    """A comma-separated list of secrets; blanks never count as a secret."""
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _rate(value: str | None) -> tuple[int, float] | None:
    """`600/60` is 600 requests per 60 seconds; unset, empty or `off` is no limit."""
    if value is None or value.strip().lower() in ("", "off", "0"):
        return None
    try:
        count, _, seconds = value.partition("/")
        limit = (int(count), float(seconds or "1"))
    except ValueError:
        raise ConfigError(f"ROLLCALL_RATE_LIMIT must look like 600/60 (requests/seconds), got {value!r}") from None
    if limit[0] < 1 or limit[1] <= 0:
        raise ConfigError("ROLLCALL_RATE_LIMIT needs at least 1 request per a positive number of seconds")
    return limit


def _networks(value: str | None) -> tuple[str, ...]:
    networks = tuple(part.strip() for part in (value or "").split(",") if part.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ConfigError(f"ROLLCALL_METRICS_ALLOW_FROM: {network!r} is not an address or network") from None
    return networks


WRITER_SOCKET_VARIABLE = "ROLLCALL_WRITER_SOCKET"
SUPERVISOR_VARIABLE = "ROLLCALL_SERVE_PID"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    # Keys CallPower may present; empty means "use the key generated on first start".
    callpower_api_keys: tuple[str, ...] = ()
    # Bearer tokens for staff (API and console); empty means "use the generated token".
    admin_tokens: tuple[str, ...] = ()
    default_region: str = "US"
    max_body_bytes: int = 64 * 1024
    # Import retries: the delay doubles from import_retry_base_seconds, at most import_max_attempts.
    import_max_attempts: int = 8
    import_retry_base_seconds: float = 2.0
    import_batch_size: int = 200
    # How often an importer with nothing to do looks for work another process made.
    import_poll_seconds: float = 0.5
    # How long an importer's claim on a call lasts before another importer may take it over.
    import_lease_seconds: float = 60.0
    log_level: str = "INFO"
    # SQLite: how long a writer waits for another process's lock before giving up (503).
    sqlite_busy_timeout_ms: int = 30_000
    # A request body must keep arriving: a client silent this long is cut off (408).
    body_timeout_seconds: float = 10.0
    # Requests per key (CallPower key or staff token) per window, per process; None: no limit.
    rate_limit: tuple[int, float] | None = None
    # Addresses that may read /metrics without a staff token (e.g. the Prometheus server).
    metrics_allow_from: tuple[str, ...] = ()
    # Set by `rollcall serve` for its API processes: the writer process's socket. Unset (an app
    # made by create_app alone, as in tests), the app stores calls on a thread of its own.
    writer_socket: str | None = None
    # PEM files for HTTPS (`rollcall serve`): the certificate (or a full chain) and its key.
    tls_cert: str | None = None
    tls_key: str | None = None
    # Set by `rollcall serve --workers N`: its process id. A worker whose parent is no longer that
    # process (serve was killed) stops itself rather than answer 503 for ever on the port.
    supervisor_pid: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        region = (env.get("ROLLCALL_DEFAULT_REGION") or "US").strip().upper()
        if len(region) != 2 or not region.isalpha():
            raise ConfigError(f"ROLLCALL_DEFAULT_REGION must be a two-letter region code, got {region!r}")
        settings = cls(
            database_url=(env.get("ROLLCALL_DATABASE_URL") or DEFAULT_DATABASE_URL).strip(),
            callpower_api_keys=_split_secrets(env.get("CALLPOWER_API_KEY")),
            admin_tokens=_split_secrets(env.get("ROLLCALL_ADMIN_TOKEN")),
            default_region=region,
            max_body_bytes=_int(env, "ROLLCALL_MAX_BODY_BYTES", 64 * 1024),
            import_max_attempts=_int(env, "ROLLCALL_IMPORT_MAX_ATTEMPTS", 8),
            import_retry_base_seconds=_float(env, "ROLLCALL_IMPORT_RETRY_BASE_SECONDS", 2.0),
            import_batch_size=_int(env, "ROLLCALL_IMPORT_BATCH_SIZE", 200),
            import_poll_seconds=_float(env, "ROLLCALL_IMPORT_POLL_SECONDS", 0.5),
            import_lease_seconds=_float(env, "ROLLCALL_IMPORT_LEASE_SECONDS", 60.0),
            log_level=(env.get("ROLLCALL_LOG_LEVEL") or "INFO").strip().upper(),
            body_timeout_seconds=_float(env, "ROLLCALL_BODY_TIMEOUT_SECONDS", 10.0),
            sqlite_busy_timeout_ms=_int(env, "ROLLCALL_SQLITE_BUSY_TIMEOUT_MS", 30_000),
            rate_limit=_rate(env.get("ROLLCALL_RATE_LIMIT")),
            metrics_allow_from=_networks(env.get("ROLLCALL_METRICS_ALLOW_FROM")),
            tls_cert=(env.get("ROLLCALL_TLS_CERT") or "").strip() or None,
            tls_key=(env.get("ROLLCALL_TLS_KEY") or "").strip() or None,
            writer_socket=env.get(WRITER_SOCKET_VARIABLE) or None,
            supervisor_pid=_int(env, SUPERVISOR_VARIABLE, 0) or None,
        )
        if settings.import_max_attempts < 1:
            raise ConfigError("ROLLCALL_IMPORT_MAX_ATTEMPTS must be at least 1")
        return settings
