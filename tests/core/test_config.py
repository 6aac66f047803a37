"""Settings: each variable declared once (config.py), read from the environment, and the README's
table of variables saying the same names and defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rollcall.config import ConfigError, Settings, environment_variable

README = Path(__file__).resolve().parents[2] / "README.md"
INTERNAL = {"writer_socket", "supervisor_pid"}  # set by `rollcall serve` for its own processes

OLD_KEY = "old-callpower-key-0123456789abcdefghij"
NEW_KEY = "new-callpower-key-0123456789abcdefghij"


def readme_variables() -> dict[str, str]:
    """{variable: default cell} of the README's configuration table."""
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    found = {}
    for row in re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \| ([^|]+) \|", table, re.MULTILINE):
        for variable in re.findall(r"`([A-Z_]+)`", row[0]):
            found[variable] = row[1].strip().strip("`")
    return found


def shown(variable: str, default: object) -> set[str]:
    """How the README writes a default."""
    if default == ():
        return {"(generated)"} if variable in ("CALLPOWER_API_KEY", "ROLLCALL_ADMIN_TOKEN") else {"none"}
    if default is None:
        return {"off", "none"}
    if isinstance(default, tuple) and len(default) == 2 and isinstance(default[1], float):
        count, seconds = default  # a limit, written as the variable takes it: 5/60
        return {f"{count}/{int(seconds) if seconds.is_integer() else seconds}"}
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return {str(default)}


def test_the_readme_lists_every_setting_with_its_default() -> None:
    listed = readme_variables()
    declared = {
        environment_variable(name): f.default for name, f in Settings.model_fields.items() if name not in INTERNAL
    }
    assert set(listed) == set(declared)
    for variable, default in declared.items():
        assert listed[variable] in shown(variable, default), variable


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLPOWER_API_KEY", f" {OLD_KEY}, {NEW_KEY} ,")
    monkeypatch.setenv("ROLLCALL_RATE_LIMIT", "600/60")
    monkeypatch.setenv("ROLLCALL_DEFAULT_REGION", "gb")
    monkeypatch.setenv("ROLLCALL_IMPORT_BATCH_SIZE", "")  # blank is unset
    settings = Settings.from_env()
    assert settings.callpower_api_keys == (OLD_KEY, NEW_KEY)
    assert settings.rate_limit == (600, 60.0)
    assert settings.default_region == "GB"
    assert settings.import_batch_size == 5000


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CALLPOWER_API_KEY": f"{OLD_KEY},short-key"}, "CALLPOWER_API_KEY: each must be at least 32 characters"),
        ({"ROLLCALL_ADMIN_TOKEN": "12345"}, "ROLLCALL_ADMIN_TOKEN: each must be at least 32 characters (one has 5)"),
        ({"ROLLCALL_DEDUP_SECRET": "tiny"}, "ROLLCALL_DEDUP_SECRET: each must be at least 32 characters"),
        (
            {"CALLPOWER_API_KEY": OLD_KEY, "ROLLCALL_ADMIN_TOKEN": f"{NEW_KEY},{OLD_KEY}"},
            "CALLPOWER_API_KEY and ROLLCALL_ADMIN_TOKEN share a secret",
        ),
        (
            {"ROLLCALL_WEBHOOK_TIMEOUT_SECONDS": "30", "ROLLCALL_WEBHOOK_LEASE_SECONDS": "30"},
            "ROLLCALL_WEBHOOK_LEASE_SECONDS must be at least twice ROLLCALL_WEBHOOK_TIMEOUT_SECONDS",
        ),
    ],
)
def test_weak_or_shared_secrets_are_refused_without_showing_them(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], message: str
) -> None:
    """A short key, or a key that is also a staff token (the CallPower key would open the staff
    API), stops the start with one line naming the variable, never the value."""
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(message)
    for value in environment.values():
        for secret in value.split(","):
            assert secret not in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ROLLCALL_IMPORT_BATCH_SIZE", "many", "ROLLCALL_IMPORT_BATCH_SIZE: Input should be a valid integer"),
        (
            "ROLLCALL_IMPORT_MAX_ATTEMPTS",
            "0",
            "ROLLCALL_IMPORT_MAX_ATTEMPTS: Input should be greater than or equal to 1",
        ),
        ("ROLLCALL_RATE_LIMIT", "fast", "ROLLCALL_RATE_LIMIT: must look like 600/60"),
        ("ROLLCALL_DEFAULT_REGION", "USA", "ROLLCALL_DEFAULT_REGION: must be a two-letter region code"),
        ("ROLLCALL_METRICS_ALLOW_FROM", "10.0.0.0/8,nowhere", "ROLLCALL_METRICS_ALLOW_FROM: 'nowhere'"),
    ],
)
def test_a_wrong_setting_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(message)
