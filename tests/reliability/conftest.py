"""The figures of the fault suite: tests add named figures, printed at the end and kept in a JSON file.

`figures.add("fuzz", calls=2000, crashes=0)` records (or replaces) the figure `fuzz`. At the end of
the session they are printed in the terminal summary and merged into
`bench/results/reliability.json` (one entry per figure name, so that `make soak`'s two pytest
runs add up to one file).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.reliability._figures import RESULTS, Figures

_FIGURES = pytest.StashKey[Figures]()


def _figures_of(config: pytest.Config) -> Figures:
    if _FIGURES not in config.stash:
        config.stash[_FIGURES] = Figures()
    return config.stash[_FIGURES]


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    """The session's figures collector."""
    return _figures_of(pytestconfig)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collected = config.stash.get(_FIGURES, None)
    if collected is None or not collected.items:
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
