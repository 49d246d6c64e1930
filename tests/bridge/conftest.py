from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentool_bridge import AgenToolInjector
from tests.bridge import _support


@pytest.fixture(autouse=True)
def injector() -> Iterator[AgenToolInjector]:
    """Each test runs on an injector of its own, active for the test (what `get_injector()` returns)."""
    own = AgenToolInjector()
    _support.SEEN_CONTEXTS.clear()
    with own.activate():
        yield own
    own.clear()


@pytest.fixture(params=_support.PATHS)
def calc(request: pytest.FixtureRequest) -> str:
    """The name of a registered calculator AgenTool, once on each execution path."""
    _support.make_calc(request.param)
    return "calc"
