"""--catchup-window: a duration, refused at start (before serving anything) when it is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_cli


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_server_with_a_catch_up_window_that_is_not_a_duration_refuses_to_start_naming_the_flag(
    tmp_path: Path, how: str
) -> None:
    database = str(tmp_path / "s.db")
    if how == "flag":
        done = run_cli("--db", database, "--no-background-runner", "--catchup-window", "until tomorrow")
    else:
        done = run_cli("--db", database, "--no-background-runner",
                       env={"MCP_SCHEDULER_CATCHUP_WINDOW": "until tomorrow"})

    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "mcp-scheduler: --catchup-window 'until tomorrow' is not a catch-up window: give a duration from 1 s to a "
        "year, such as '1 day', '12h' or '30 minutes'."
    )
    assert "Scheduler open" not in done.stderr and done.stdout == ""
    assert not Path(database).exists()  # refused before the store was opened
