"""The backstop behind pytest-timeout's per-test limit: a test still not done `BACKSTOP_S` after its limit ends its
test process, with every thread's stack on stderr.

pytest-timeout (`timeout`, method `signal`, in pyproject.toml) fails a test that passes its limit from SIGALRM in the
test's own process: the test fails with its traceback, the other threads' stacks are in its report, its fixtures are
torn down and the worker goes on with the next test. Two hangs escape it: a main thread blocked in C code that never
returns to Python (the signal's handler never runs), and a teardown that hangs after the limit fired (one alarm per
test). For those, faulthandler's watchdog thread (C, needs no Python to run) dumps every thread's stack to the
session's stderr and exits the process: under pytest-xdist the controller reports that test as failed ("worker
crashed while running") and starts another worker for the rest. The watchdog is armed for the test's whole run, and
armed again as its teardown starts (a failed test's report cancels it: pytest's faulthandler plugin does so on
`pytest_exception_interact`). Registered from tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import faulthandler
import os
import sys
import time
from collections.abc import Generator
from typing import IO

import pytest

BACKSTOP_S = 60.0
"""Seconds past a test's limit before its process is ended (ini `timeout_backstop`)."""

_DEADLINE = pytest.StashKey[float]()
_STDERR = pytest.StashKey[IO[str]]()


def _limit(item: pytest.Item) -> float:
    """The test's pytest-timeout limit in seconds (its marker, else --timeout, else the ini's); 0: none."""
    marker = item.get_closest_marker("timeout")
    if marker is not None and (marker.args or "timeout" in marker.kwargs):
        value = marker.args[0] if marker.args else marker.kwargs["timeout"]
    else:
        value = item.config.getoption("timeout", None)
        if value is None:
            value = item.config.getini("timeout") or 0
    return float(value or 0)


def _backstop(config: pytest.Config) -> float:
    return float(config.getini("timeout_backstop") or BACKSTOP_S)


def _arm(item: pytest.Item, seconds: float) -> None:
    faulthandler.dump_traceback_later(seconds, exit=True, file=item.config.stash[_STDERR])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("timeout_backstop", f"seconds past a test's timeout before its process ends (default {BACKSTOP_S:g})")


def pytest_configure(config: pytest.Config) -> None:
    # A copy of stderr as it is now: during a test, pytest captures fd 2 into a file that an exit would lose.
    config.stash[_STDERR] = open(os.dup(sys.__stderr__.fileno()), "w")  # kept open for the session


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STDERR in config.stash:
        faulthandler.cancel_dump_traceback_later()
        config.stash[_STDERR].close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    limit = _limit(item)
    if limit <= 0 or item.config.getoption("usepdb", False):
        return (yield)
    item.stash[_DEADLINE] = time.monotonic() + limit + _backstop(item.config)
    _arm(item, limit + _backstop(item.config))
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    deadline = item.stash.get(_DEADLINE, None)
    if deadline is not None:
        _arm(item, max(deadline - time.monotonic(), _backstop(item.config)))
