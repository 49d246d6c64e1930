from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentool_bridge import get_injector
from tests.bridge import _support


@pytest.fixture(autouse=True)
def clean_injector() -> Iterator[None]:
    get_injector().clear()
    _support.SEEN_CONTEXTS.clear()
    yield
    get_injector().clear()
    _support.SEEN_CONTEXTS.clear()


@pytest.fixture(params=_support.PATHS)
def calc(request: pytest.FixtureRequest) -> str:
    """The name of a registered calculator AgenTool, once on each execution path."""
    _support.make_calc(request.param)
    return "calc"
