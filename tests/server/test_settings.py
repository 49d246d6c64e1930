"""Settings keep the job-kind toolkits' settings as flat fields (the CLI builds them without importing
agentool_bridge); `Settings.toolkit_config()` hands them to the toolkits as a `ToolkitConfig`."""

from __future__ import annotations

import dataclasses

import pytest

from agentool_bridge.toolkits.config import ToolkitConfig
from mcp_scheduler.settings import Settings

PASSED_THROUGH = [f for f in dataclasses.fields(ToolkitConfig) if f.name != "exposed"]
"""The toolkit settings the operator gives; `exposed` follows from where the server listens."""


@pytest.mark.parametrize("toolkit_field", PASSED_THROUGH, ids=lambda f: f.name)
def test_each_toolkit_setting_is_a_setting_with_the_same_default(toolkit_field: dataclasses.Field[object]) -> None:
    settings_fields = {f.name: f for f in dataclasses.fields(Settings)}

    assert toolkit_field.name in settings_fields
    assert settings_fields[toolkit_field.name].default == toolkit_field.default


def test_the_toolkit_config_carries_every_toolkit_setting_given() -> None:
    given = {"http_allow": ("10.0.0.0/8",), "servers_file": "/s.json", "model": "test:model",
             "shell_executables": ("echo",), "shell_env": ("FOO",), "shell_max_processes": 3, "log_dir": "/logs"}
    assert set(given) == {f.name for f in PASSED_THROUGH}

    config = Settings(**given).toolkit_config()  # type: ignore[arg-type]

    assert {name: getattr(config, name) for name in given} == given


@pytest.mark.parametrize(
    ("transport", "host", "exposed"),
    [("stdio", "0.0.0.0", False), ("http", "127.0.0.1", False), ("http", "0.0.0.0", True), ("sse", "::", True)],
)
def test_the_toolkits_are_exposed_when_the_server_listens_beyond_loopback(
    transport: str, host: str, exposed: bool
) -> None:
    settings = Settings(transport=transport, host=host)  # type: ignore[arg-type]

    assert settings.toolkit_config().exposed is exposed
