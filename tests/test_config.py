"""Settings: each variable declared once (config.py), read from the environment, and the README's
table of variables saying the same names and defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rollcall.config import ConfigError, Settings, environment_variable

README = Path(__file__).resolve().parent.parent / "README.md"
INTERNAL = {"writer_socket", "supervisor_pid"}  # set by `rollcall serve` for its own processes


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
    monkeypatch.setenv("CALLPOWER_API_KEY", " old-key, new-key ,")
    monkeypatch.setenv("ROLLCALL_RATE_LIMIT", "600/60")
    monkeypatch.setenv("ROLLCALL_DEFAULT_REGION", "gb")
    monkeypatch.setenv("ROLLCALL_IMPORT_BATCH_SIZE", "")  # blank is unset
    settings = Settings.from_env()
    assert settings.callpower_api_keys == ("old-key", "new-key")
    assert settings.rate_limit == (600, 60.0)
    assert settings.default_region == "GB"
    assert settings.import_batch_size == 200


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ROLLCALL_IMPORT_BATCH_SIZE", "many", "ROLLCALL_IMPORT_BATCH_SIZE: Input should be a valid integer"),
        (
            "ROLLCALL_IMPORT_MAX_ATTEMPTS",
            "0",
            "ROLLCALL_IMPORT_MAX_ATTEMPTS: Input should be greater than or equal to 1",
        ),
        ("ROLLCALL_RATE_LIMIT", "fast", "ROLLCALL_RATE_LIMIT: Value error, must look like 600/60"),
        ("ROLLCALL_DEFAULT_REGION", "USA", "ROLLCALL_DEFAULT_REGION: Value error, must be a two-letter region code"),
        ("ROLLCALL_METRICS_ALLOW_FROM", "10.0.0.0/8,nowhere", "ROLLCALL_METRICS_ALLOW_FROM: Value error, 'nowhere'"),
    ],
)
def test_a_wrong_setting_is_named(monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env()
    assert str(raised.value).startswith(message)
