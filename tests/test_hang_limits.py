"""A hang fails its one test with stacks, under pytest-xdist as `make test` runs (pytest-timeout's `signal` method from
pyproject.toml, and tests/_hang_backstop.py for what SIGALRM cannot end), and the other tests still run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HANGING = '''
import asyncio
import threading

import pytest


def test_before():
    pass


def test_waits_forever_beside_a_thread():
    threading.Thread(target=threading.Event().wait, name="helper-waiting", daemon=True).start()
    threading.Event().wait()


@pytest.fixture
async def stuck_teardown():
    yield
    await asyncio.Event().wait()


async def test_whose_teardown_hangs_after_its_limit(stuck_teardown):
    await asyncio.Event().wait()


def test_after():
    pass
'''


def test_a_hang_in_a_test_or_in_its_teardown_fails_that_test_with_every_threads_stack(tmp_path: Path) -> None:
    (tmp_path / "test_hanging.py").write_text(textwrap.dedent(HANGING))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
         "-p", "tests._hang_backstop", "-p", "no:cacheprovider", "--numprocesses", "2", "--dist", "worksteal",
         "--timeout", "2", "-o", "timeout_backstop=2", str(tmp_path / "test_hanging.py")],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        capture_output=True, text=True, timeout=60,
    )
    out = done.stdout + done.stderr

    assert done.returncode == 1, out
    assert "2 passed" in out and "3 failed" in out, out  # the crash report is the third: the worker's end
    # The test body: failed by SIGALRM, its traceback where it waited, the helper thread's stack in its report.
    assert "FAILED test_hanging.py::test_waits_forever_beside_a_thread - Failed: Timeout" in out, out
    assert "Failed: Timeout (>2.0s) from pytest-timeout" in out, out
    assert "Stack of helper-waiting" in out, out
    # The teardown that hangs past the limit: the backstop dumps every thread (the main one in the teardown) and
    # ends the worker, which xdist reports as that test's failure.
    assert "worker 'gw" in out and "crashed while running 'test_hanging.py::test_whose_teardown_hangs" in out, out
    assert "most recent call first" in out and "in pytest_runtest_teardown" in out, out
