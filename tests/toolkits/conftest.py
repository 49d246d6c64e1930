"""Fixtures of the built-in toolkit tests: an injector of each test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentool_bridge import AgenToolInjector


@pytest.fixture(autouse=True)
def injector() -> Iterator[AgenToolInjector]:
    """An injector active for the test; its AgenTools (and their databases and files) are closed after it."""
    own = AgenToolInjector()
    with own.activate():
        yield own
    own.clear()
