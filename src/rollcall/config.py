"""The one settings object: each variable declared once, with its default and meaning, read from
the environment once at start (`Settings.from_env()`) and passed down. The README's table of
variables is checked against this declaration (tests/test_config.py)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rollcall.times import zone_name

WRITER_SOCKET_VARIABLE = "ROLLCALL_WRITER_SOCKET"
MAX_RETRY_DELAY_HOURS = 6  # a failed import is tried again after at most this long

# A webhook delivery's lease is at least twice the attempt's deadline and this much more: a taken
# delivery goes out only while its lease has the deadline and this margin left (`deliverer`), and
# the rest leaves it time to wait its turn.
LEASE_MARGIN_SECONDS = 1.0
SUPERVISOR_VARIABLE = "ROLLCALL_SERVE_PID"


class ConfigError(Exception):
    """A setting in the environment cannot be used."""


# Keys, tokens and secrets given in the environment are at least this long: a short one can be
# guessed, and logs redact known secrets by their text (a short one would be found everywhere).
MIN_SECRET_LENGTH = 32


def _variable(name: str, *, field: str) -> Any:
    """The environment variable `name` for a field whose name differs (the field's name is
    still accepted by code that builds settings)."""
    return AliasChoices(name, field)


# A comma-separated list in the environment (blanks never count); a tuple in code.
Listed = Annotated[tuple[str, ...], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ROLLCALL_", env_ignore_empty=True, extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str = Field("sqlite:///./rollcall.db", description="SQLite file, or postgresql://user:pass@host/db")
    callpower_api_keys: Listed = Field(
        (),
        validation_alias=_variable("CALLPOWER_API_KEY", field="callpower_api_keys"),
        description="keys CallPower may use, comma-separated (list two to rotate); none: the generated one",
    )
    admin_tokens: Listed = Field(
        (),
        validation_alias=_variable("ROLLCALL_ADMIN_TOKEN", field="admin_tokens"),
        description="staff tokens for the API and the console, comma-separated; none: the generated one",
    )
    default_region: str = Field("US", description="region for numbers sent without a country code")
    default_timezone: str = Field(
        "UTC", description="IANA time zone of results whose campaign names none (America/New_York)"
    )
    unreachable_share: float = Field(
        0.5, gt=0, lt=1, description="a target is flagged when more than this share of its calls went unanswered"
    )
    unreachable_min_calls: int = Field(
        20, ge=1, description="...of at least this many calls in the last 24 hours (busy, no answer, failed)"
    )
    max_body_bytes: int = Field(64 * 1024, ge=1, description="request body limit (413 beyond)")
    import_max_attempts: int = Field(8, ge=1, description="failed imports before a call is `dead`")
    import_retry_base_seconds: float = Field(
        2.0, gt=0, description=f"first retry delay; doubles each attempt (at most {MAX_RETRY_DELAY_HOURS} h)"
    )
    import_batch_size: int = Field(5000, ge=1, description="most calls one import batch claims")
    import_batch_seconds: float = Field(
        0.25,
        gt=0,
        description="how long an import batch may hold the writer: each is sized from the last one's pace",
    )
    import_poll_seconds: float = Field(
        0.5, gt=0, description="how often an idle importer looks for work (PostgreSQL: new calls wake it at once)"
    )
    import_lease_seconds: float = Field(
        60.0, gt=0, description="PostgreSQL: how soon the calls of an importer that vanished are taken over"
    )
    log_level: str = Field("INFO", description="log level")
    sqlite_busy_timeout_ms: int = Field(
        30_000, ge=0, description="SQLite: how long a writer waits for another process's lock (503 beyond)"
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="a request body not wholly received this long after its headers is cut off (408)"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a request whose headers are not wholly received this long after it began is cut off"
    )
    max_header_bytes: int = Field(16 * 1024, ge=1024, description="request headers limit (431 beyond)")
    max_connections: int = Field(
        1000, ge=1, description="connections (and requests in progress) per API process; 503 beyond"
    )
    trusted_proxies: Listed = Field(
        (),
        description="addresses or networks of proxies whose X-Forwarded-For and X-Forwarded-Proto are believed, "
        "comma-separated; none by default",
    )
    rate_limit: tuple[int, float] | None = Field(
        None, description="e.g. `600/60`: requests per key per 60 s, per process (429 beyond); off by default"
    )
    sign_in_limit: tuple[int, float] = Field(
        (5, 60.0),
        description="wrong staff tokens (console sign-in, API bearer) per client address per 60 s, per process "
        "(429 beyond)",
    )
    metrics_allow_from: Listed = Field(
        (), description="addresses or networks that may read `/metrics` without a token, comma-separated"
    )
    dedup_secret: str | None = Field(
        None, description="the key de-duplication keys are made with; generated and stored when not set"
    )
    event_retention_days: float = Field(30, gt=0, description="how long events are kept for the feed and webhooks")
    call_body_retention_days: float | None = Field(
        None,
        gt=0,
        description="remove the bodies of imported, discarded and rejected calls older than this; off by default",
    )
    webhooks_allow_http: bool = Field(
        False, description="allow webhook URLs with plain `http://` (tests, a private network)"
    )
    webhooks_allow_private: bool = Field(
        False, description="allow webhook URLs that resolve to loopback, private or link-local addresses"
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="how long a webhook receiver has to answer")
    webhook_lease_seconds: float = Field(
        30.0, gt=0, description="how soon a delivery that a vanished deliverer had taken is sent by another"
    )
    webhook_deliverers: int = Field(
        1,
        ge=1,
        le=16,
        description="deliverer processes `rollcall serve` and `rollcall worker` each start (they share the work)",
    )
    webhook_poll_seconds: float = Field(0.2, gt=0, description="how often an idle deliverer looks for new events")
    tls_cert: str | None = Field(
        None, description="PEM certificate (a full chain works): `rollcall serve` speaks HTTPS; with `TLS_KEY`"
    )
    tls_key: str | None = Field(None, description="PEM private key of `TLS_CERT`")
    backup_dir: str | None = Field(
        None,
        description="where backups and the erasure ledger go (`rollcall backup`; with `BACKUP_INTERVAL`, "
        "`rollcall serve` takes them)",
    )
    backup_interval: float | None = Field(
        None,
        gt=0,
        description="e.g. `6h` (also `30m`, `1d`, seconds): `rollcall serve` backs up to `BACKUP_DIR` this often",
    )
    backup_keep: int = Field(14, ge=1, description="backups kept in `BACKUP_DIR`; the oldest beyond go")
    # Set by `rollcall serve` for its API processes: the writer process's socket. Unset (an app
    # made by create_app alone, as in tests), the app stores calls on a thread of its own.
    writer_socket: str | None = Field(None, validation_alias=_variable(WRITER_SOCKET_VARIABLE, field="writer_socket"))
    # Set by `rollcall serve --workers N`: its process id. A worker whose parent is no longer that
    # process (serve was killed) stops itself rather than answer 503 for ever on the port.
    supervisor_pid: int | None = Field(None, validation_alias=_variable(SUPERVISOR_VARIABLE, field="supervisor_pid"))

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's environment; `ConfigError` names each variable that is wrong."""
        try:
            return cls()
        except ValidationError as error:
            problems = []
            for problem in error.errors():
                message = str(problem["msg"]).removeprefix("Value error, ")
                if not problem["loc"]:  # a rule over several settings names them itself
                    problems.append(message)
                    continue
                name = str(problem["loc"][0])
                variable = name if name.isupper() else environment_variable(name)
                problems.append(f"{variable}: {message}")
            raise ConfigError("; ".join(problems)) from None

    @field_validator("callpower_api_keys", "admin_tokens", "metrics_allow_from", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("callpower_api_keys", "admin_tokens", "dedup_secret")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        for secret in value if isinstance(value, tuple) else (value,) if value else ():
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"each must be at least {MIN_SECRET_LENGTH} characters (one has {len(secret)}); "
                    "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return value

    @model_validator(mode="after")
    def _one_secret_one_door(self) -> Settings:
        if set(self.callpower_api_keys) & set(self.admin_tokens):
            raise ValueError(
                f"{environment_variable('callpower_api_keys')} and {environment_variable('admin_tokens')} share a "
                "secret: the CallPower key would open the staff API; give each its own"
            )
        if self.webhook_lease_seconds < 2 * self.webhook_timeout_seconds + LEASE_MARGIN_SECONDS:
            raise ValueError(
                f"{environment_variable('webhook_lease_seconds')} must be at least twice "
                f"{environment_variable('webhook_timeout_seconds')} and {LEASE_MARGIN_SECONDS:g} s more: a delivery's "
                "lease must outlive its attempt, or a slow receiver gets it twice"
            )
        return self

    def secrets(self) -> tuple[str, ...]:
        """The secrets these settings give, which no log line may show."""
        return (*self.callpower_api_keys, *self.admin_tokens, *((self.dedup_secret,) if self.dedup_secret else ()))

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        region = value.strip().upper()
        if len(region) != 2 or not region.isalpha():
            raise ValueError(f"must be a two-letter region code, got {value!r}")
        return region

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return zone_name(value)

    @field_validator("database_url", "tls_cert", "tls_key")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("rate_limit", "sign_in_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any, info: ValidationInfo) -> Any:
        """`600/60` is 600 requests per 60 seconds; `off` (or 0) is no limit (the rate limit only)."""
        if not isinstance(value, str):
            return value
        if value.strip().lower() in ("", "off", "0") and info.field_name == "rate_limit":
            return None
        count, _, seconds = value.partition("/")
        try:
            limit = (int(count), float(seconds or "1"))
        except ValueError:
            raise ValueError(f"must look like 600/60 (requests/seconds), got {value!r}") from None
        if limit[0] < 1 or limit[1] <= 0:
            raise ValueError("needs at least 1 request per a positive number of seconds")
        return limit

    @field_validator("backup_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        """`6h`, `30m`, `1d`, `90s` or a number of seconds."""
        if not isinstance(value, str):
            return value
        return duration_seconds(value)

    @model_validator(mode="after")
    def _backups_somewhere(self) -> Settings:
        if self.backup_interval is not None and not self.backup_dir:
            raise ValueError(
                f"{environment_variable('backup_interval')} is set but {environment_variable('backup_dir')} is not: "
                "say where the backups go"
            )
        return self

    @field_validator("metrics_allow_from", "trusted_proxies")
    @classmethod
    def _networks(cls, networks: tuple[str, ...]) -> tuple[str, ...]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not an address or network") from None
        return networks


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """`6h`, `30m`, `1d`, `90s` or a number of seconds, as seconds."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:])
    try:
        return float(value[:-1] if unit else value) * (unit or 1)
    except ValueError:
        raise ValueError(f"must be a duration such as 6h, 30m, 1d or 90s, got {text!r}") from None


def environment_variable(field: str) -> str:
    """The environment variable that gives a setting."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"ROLLCALL_{field.upper()}"
