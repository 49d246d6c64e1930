from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentool_bridge import AgenToolInjector
from tests.bridge import _support


@pytest.fixture
def injector() -> Iterator[AgenToolInjector]:
    """The test's own injector, active while it runs (what `get_injector()` returns, so that `register_agentool`
    and `create_agentool` register there); its AgenTools are closed after the test."""
    own = AgenToolInjector()
    _support.SEEN_CONTEXTS.clear()
    with own.activate():
        yield own
    own.clear()


@pytest.fixture(params=_support.PATHS)
def calc(request: pytest.FixtureRequest, injector: AgenToolInjector) -> str:
    """The name of a registered calculator AgenTool, once on each execution path."""
    _support.make_calc(request.param)
    return "calc"
