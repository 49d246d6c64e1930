"""The fault suite's figures across test processes: printed at the end of the session, merged into a JSON file.

Tests add figures through the `figures` fixture (tests/reliability/conftest.py). Under pytest-xdist each
worker hands its figures to the controller when it ends (`workeroutput`), and the controller prints and
writes them all; a run without workers does both itself. Registered from tests/conftest.py
(`pytest_plugins`), since the controller loads no conftest below the test root.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability._figures import RESULTS, Figures

FIGURES = pytest.StashKey[Figures]()
_OUTPUT_KEY = "reliability_figures"


def figures_of(config: pytest.Config) -> Figures:
    """The figures collected in this process (created on first use)."""
    if FIGURES not in config.stash:
        config.stash[FIGURES] = Figures()
    return config.stash[FIGURES]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: its figures travel to the controller
        output[_OUTPUT_KEY] = figures_of(session.config).items


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    items = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY) or {}
    figures_of(node.config).items.update(items)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collected = figures_of(config)
    if not collected.items or getattr(config, "workeroutput", None) is not None:
        return
    terminalreporter.section("reliability figures")
    for line in collected.lines():
        terminalreporter.write_line(line)
    try:
        collected.write(RESULTS)
    except OSError as exc:
        terminalreporter.write_line(f"(could not write {RESULTS}: {exc})")
    else:
        terminalreporter.write_line(f"written to {RESULTS}")
