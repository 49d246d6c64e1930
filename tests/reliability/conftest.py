"""The figures of the fault suite: tests add named figures, printed at the end and kept in a JSON file.

`figures.add("fuzz", calls=2000, crashes=0)` records (or replaces) the figure `fuzz`. At the end of
the session they are printed in the terminal summary and merged into
`bench/results/reliability.json` (one entry per figure name, so that `make soak`'s two pytest
runs add up to one file); tests/_figures_plugin.py does that, also across pytest-xdist workers.
"""

from __future__ import annotations

import pytest

from tests._figures_plugin import figures_of
from tests.reliability._figures import Figures


@pytest.fixture(scope="session")
def figures(pytestconfig: pytest.Config) -> Figures:
    """The session's figures collector."""
    return figures_of(pytestconfig)
