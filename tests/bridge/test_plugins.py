"""Toolkit discovery through entry points, and `load_toolkit('module:factory')`."""

from __future__ import annotations

import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentool_bridge import (
    ENTRY_POINT_GROUP,
    AgenTool,
    AgenToolInjector,
    ToolkitLoadError,
    discover_toolkits,
    load_toolkit,
)

DEMO_MODULES = ("demo_toolkit", "broken_toolkit", "explodes_on_import")

DEMO_TOOLKIT = '''
from typing import Literal

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool

CALLS = []
NOT_CALLABLE = 42


class DemoInput(BaseOperationInput):
    """Says hello."""

    operation: Literal["hello"]
    name: str = "world"


def hello(name: str) -> dict:
    return {"greeting": f"hello {name}"}


def create():
    CALLS.append("create")
    return register_agentool(
        "demo", DemoInput, RoutingConfig(operation_map={"hello": ("hello", lambda m: {"name": m.name})}), [hello]
    )


def explode():
    raise RuntimeError("factory exploded")
'''


def write_distribution(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """A minimal installed distribution: package dirs plus `<dist>-0.1.dist-info/`."""
    for module, source in modules.items():
        package = root / module
        package.mkdir()
        (package / "__init__.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")


def forget_demo_modules() -> None:
    for module in DEMO_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`tmp_path` on sys.path with the demo_toolkit distribution installed in it."""
    forget_demo_modules()
    write_distribution(tmp_path, "demo_toolkit", {"demo": "demo_toolkit:create"}, {"demo_toolkit": DEMO_TOOLKIT})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    forget_demo_modules()


@pytest.fixture
def broken_site(site: Path) -> Path:
    """Adds a distribution whose entry points fail in three ways."""
    write_distribution(
        site,
        "broken_toolkit",
        {
            "missing_module": "no_such_toolkit_module_xyz:create",
            "missing_factory": "demo_toolkit:no_such_factory",
            "exploding": "demo_toolkit:explode",
        },
        {"broken_toolkit": ""},
    )
    return site


def test_the_entry_point_group_is_agentool_bridge_toolkits() -> None:
    assert ENTRY_POINT_GROUP == "agentool_bridge.toolkits"


async def test_discover_toolkits_calls_the_entry_point_factory_and_registers_its_agentools(
    injector: AgenToolInjector, site: Path
) -> None:
    loaded = discover_toolkits()

    assert "demo" in loaded
    assert injector.registry.exists("demo")
    assert injector.registry.get("demo").description == "Says hello."
    assert sys.modules["demo_toolkit"].CALLS == ["create"]
    assert await injector.run("demo", {"operation": "hello", "name": "bob"}) == {"greeting": "hello bob"}


def test_discover_toolkits_of_an_unused_group_loads_nothing(injector: AgenToolInjector, site: Path) -> None:
    assert discover_toolkits("agentool_bridge.no_such_group") == []
    assert injector.registry.names() == []


def test_broken_entry_points_are_skipped_with_a_warning_when_not_strict(
    injector: AgenToolInjector, broken_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentool_bridge.plugins"):
        loaded = discover_toolkits(strict=False)

    assert "demo" in loaded
    assert not {"missing_module", "missing_factory", "exploding"} & set(loaded)
    assert injector.registry.exists("demo")
    skipped = [r.getMessage() for r in caplog.records if r.name == "agentool_bridge.plugins"]
    for name in ["missing_module", "missing_factory", "exploding"]:
        assert any(f"Skipping toolkit entry point {name}:" in message for message in skipped), skipped


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("no_such_toolkit_module_xyz:create", "Cannot load toolkit entry point 'broken': No module named"),
        ("demo_toolkit:no_such_factory", "Cannot load toolkit entry point 'broken': .*no_such_factory"),
        ("demo_toolkit:explode", "Toolkit factory 'demo_toolkit:explode' failed: factory exploded"),
        ("demo_toolkit:NOT_CALLABLE", "Toolkit 'demo_toolkit:NOT_CALLABLE' is not callable"),
    ],
)
def test_a_broken_entry_point_raises_toolkit_load_error_when_strict(
    injector: AgenToolInjector, site: Path, value: str, message: str
) -> None:
    write_distribution(site, "broken_toolkit", {"broken": value}, {"broken_toolkit": ""})

    with pytest.raises(ToolkitLoadError, match=message) as info:
        discover_toolkits(strict=True)

    assert isinstance(info.value, ImportError)


def test_load_toolkit_imports_the_module_and_returns_what_the_factory_returns(
    injector: AgenToolInjector, site: Path
) -> None:
    agentool = load_toolkit("demo_toolkit:create")

    assert isinstance(agentool, AgenTool)
    assert agentool.name == "demo"
    assert injector.registry.get("demo") is agentool


def test_load_toolkit_also_accepts_a_dotted_reference(injector: AgenToolInjector, site: Path) -> None:
    load_toolkit("demo_toolkit.create")

    assert injector.registry.names() == ["demo"]


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("demo_toolkit", r"Toolkit reference 'demo_toolkit' must look like 'package.module:factory'"),
        (":create", r"must look like 'package.module:factory'"),
        ("demo_toolkit:", r"must look like 'package.module:factory'"),
        ("no_such_toolkit_module_xyz:create", r"Cannot import toolkit module 'no_such_toolkit_module_xyz'"),
        ("demo_toolkit:missing", r"Module 'demo_toolkit' has no factory 'missing'"),
        ("demo_toolkit:NOT_CALLABLE", r"Toolkit 'demo_toolkit:NOT_CALLABLE' is not callable"),
        ("demo_toolkit:explode", r"Toolkit factory 'demo_toolkit:explode' failed: factory exploded"),
    ],
)
def test_load_toolkit_rejects_bad_references_with_toolkit_load_error(
    injector: AgenToolInjector, site: Path, reference: str, message: str
) -> None:
    with pytest.raises(ToolkitLoadError, match=message):
        load_toolkit(reference)


def test_load_toolkit_wraps_any_error_raised_while_importing_the_module(injector: AgenToolInjector, site: Path) -> None:
    (site / "explodes_on_import.py").write_text("raise RuntimeError('bad module')\n")

    with pytest.raises(ToolkitLoadError, match="Cannot import toolkit module 'explodes_on_import': bad module"):
        load_toolkit("explodes_on_import:create")
