"""`mcp-scheduler runs show RUN_ID` prints a run whole (result, error with its traceback, timings), and `logs [-f]`
prints and follows the background runner's log file."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.cli.runs import show_run
from mcp_scheduler.errors import JobExecutionError
from mcp_scheduler.models import SchedulerInput
from mcp_scheduler.settings import Settings
from tests._cli import command, environment

WAIT = 10.0


async def two_runs(database: str) -> tuple[str, str]:
    """A run that succeeded and one that failed, of real jobs; their ids."""
    settings = Settings(database=database, timezone="UTC", discover_entry_points=False)
    async with SchedulerRuntime(settings.service_config()) as runtime:
        svc = runtime.service
        for job_id, data in (("ok", {"operation": "set", "key": "k", "value": {"n": 1}}),
                             ("bad", {"operation": "get", "key": "never-set"})):
            await svc.schedule(SchedulerInput(operation="schedule", job_id=job_id, schedule_type="interval",
                                              schedule="1 hour", agentool_name="storage_kv", input_data=data))
        ok = await svc.run_now(SchedulerInput(operation="run_now", job_id="ok"))
        with pytest.raises(JobExecutionError):
            await svc.run_now(SchedulerInput(operation="run_now", job_id="bad"))
        (bad,) = await svc.get_history("bad")
    return ok.run_id, bad.run_id


async def test_runs_show_prints_the_whole_error_with_its_traceback_and_the_whole_result(tmp_path: Path) -> None:
    database = str(tmp_path / "s.db")
    ok, bad = await two_runs(database)
    settings = Settings(database=database, timezone="UTC")

    out = io.StringIO()
    assert await show_run(settings, bad[:8], out=out, err=io.StringIO()) == 0
    text = out.getvalue()
    assert f"run:       {bad}" in text and "status:    error" in text and "trigger:   run_now" in text
    assert "\nerror:     " in text and "never-set" in text
    assert "traceback:\nTraceback (most recent call last)" in text

    out = io.StringIO()
    assert await show_run(settings, ok, as_json=True, out=out) == 0
    shown = json.loads(out.getvalue())
    assert shown["run_id"] == ok and shown["status"] == "success" and shown["duration_ms"] >= 0
    assert shown["started_at"].endswith("+00:00") and shown["error"] is None
    assert shown["result"] is not None

    err = io.StringIO()
    assert await show_run(settings, "ffff0000", out=io.StringIO(), err=err) == 3
    assert "no run 'ffff0000'" in err.getvalue()


def test_the_cli_shows_a_run_and_prints_the_runners_log(tmp_path: Path) -> None:
    import asyncio

    database = str(tmp_path / "s.db")
    _, bad = asyncio.run(two_runs(database))
    shown = command(tmp_path, "runs", "show", bad[:10], "--db", database)
    assert shown.returncode == 0, shown.stderr
    assert "status:    error" in shown.stdout and "Traceback" in shown.stdout

    missing = command(tmp_path, "logs", "--db", database)
    assert missing.returncode == 1 and "no log at" in missing.stderr
    from mcp_scheduler.runner_paths import runner_log_path

    env = environment(tmp_path)
    log = Path(env["XDG_STATE_HOME"]) / "mcp-scheduler" / runner_log_path(database).name
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {n}\n" for n in range(1, 201)))
    printed = command(tmp_path, "logs", "--db", database, "-n", "3")
    assert printed.returncode == 0 and printed.stdout == "line 198\nline 199\nline 200\n"


def test_logs_follow_prints_what_the_runner_writes_until_interrupted(tmp_path: Path) -> None:
    from mcp_scheduler.runner_paths import runner_log_path

    database = str(tmp_path / "s.db")
    env = environment(tmp_path)
    log = Path(env["XDG_STATE_HOME"]) / "mcp-scheduler" / runner_log_path(database).name
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("old 1\nold 2\n")
    follower = subprocess.Popen(
        [sys.executable, "-m", "mcp_scheduler", "logs", "-f", "-n", "1", "--db", database], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env,
    )
    try:
        assert follower.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout or ()], daemon=True).start()
        assert lines.get(timeout=WAIT) == "old 2\n"
        with log.open("a") as file:
            file.write("new line\n")
        assert lines.get(timeout=WAIT) == "new line\n"
    finally:
        follower.send_signal(2)  # Ctrl-C
        try:
            follower.wait(timeout=WAIT)
        finally:
            if follower.poll() is None:
                follower.kill()
    assert follower.returncode == 0
