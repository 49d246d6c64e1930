"""Fixtures of the built-in toolkit tests: a clean AgenTool registry around every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentool_bridge import AgenToolInjector, get_injector


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Clear the registry (which also closes the toolkits' databases and files) before and after."""
    get_injector().clear()
    yield
    get_injector().clear()


@pytest.fixture
def injector() -> AgenToolInjector:
    """The process-wide injector."""
    return get_injector()
