"""`mcp-scheduler status` on real processes: it names the runner and the standbys, and follows a takeover."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from mcp_scheduler.presence import presence_dir, serving_processes
from mcp_scheduler.status import sqlite_runner
from tests._net import eventually, free_port, stop
from tests.reliability.test_kill9 import start_server


def status(database: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_scheduler", "status", "--db", str(database)],
                          capture_output=True, text=True, timeout=60)


def line(output: str, label: str) -> list[str]:
    return [row for row in output.splitlines() if row.startswith(label)]


async def test_status_names_the_runner_and_the_standby_and_follows_a_kill(tmp_path: Path) -> None:
    database, log = tmp_path / "s.db", tmp_path / "server.log"
    first = start_server(database, free_port(), log)
    second = None
    try:
        await eventually(lambda: sqlite_runner(str(database)) is not None, what="the first server taking the lease")
        second = start_server(database, free_port(), log)
        await eventually(lambda: len(serving_processes(database)) == 2, what="both servers registering")

        shown = status(database)
        assert shown.returncode == 0, shown.stderr
        assert line(shown.stdout, "runner:") == [line(shown.stdout, "runner:")[0]]
        assert f"pid {first.pid} " in line(shown.stdout, "runner:")[0]
        assert "(http)" in line(shown.stdout, "runner:")[0]
        standbys = line(shown.stdout, "standby:")
        assert len(standbys) == 1 and f"pid {second.pid} " in standbys[0] and "(http)" in standbys[0]

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert (presence_dir(database) / f"{first.pid}.json").exists()  # left behind by the kill
        await eventually(lambda: (sqlite_runner(str(database)) or {}).get("pid") == second.pid,
                         what="the standby taking over")

        shown = status(database)
        assert shown.returncode == 0, shown.stderr
        assert f"pid {second.pid} " in line(shown.stdout, "runner:")[0]
        assert line(shown.stdout, "standby:") == ["standby:  none"]
        assert str(first.pid) not in shown.stdout
        assert not (presence_dir(database) / f"{first.pid}.json").exists()  # the dead process's file is cleaned

        stop(second)
        shown = status(database)
        assert shown.returncode == 1
        assert line(shown.stdout, "runner:") == ["runner:   nobody: no scheduler process runs the jobs"]
        assert line(shown.stdout, "standby:") == ["standby:  none"]
        assert not presence_dir(database).exists()  # a clean stop removes its file, and the last one the folder
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop(process)


def test_status_without_a_database_tells_what_to_pass(tmp_path: Path) -> None:
    shown = status(tmp_path / "missing.db")
    assert shown.returncode == 1
    assert "No scheduler database at" in shown.stderr and "--db FILE" in shown.stderr


def postgres_runner_pid(url: str) -> int | None:
    """The pid of the scheduler process holding the lease of `url`, from its lease session's application name."""
    import psycopg

    from mcp_scheduler.postgres_lease import HOLDER_QUERY, WHERE, lease_key

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(WHERE).fetchone()
        holder = conn.execute(HOLDER_QUERY, (lease_key(str(row[0]) if row else ""),)).fetchone()
    if holder is None:
        return None
    return int(str(holder[1]).split(" pid ")[1].split()[0])


async def test_status_on_postgres_names_the_runner_and_the_standby(tmp_path: Path, postgres_url: str) -> None:
    log = tmp_path / "server.log"
    first = start_server(postgres_url, free_port(), log, "--lease-time", "2")
    second = None
    try:
        await eventually(lambda: postgres_runner_pid(postgres_url) == first.pid, what="the first server's lease")
        second = start_server(postgres_url, free_port(), log, "--lease-time", "2")

        shown = status(postgres_url)
        assert shown.returncode == 0, shown.stderr
        assert f"pid {first.pid} on " in line(shown.stdout, "runner:")[0]
        standbys = line(shown.stdout, "standby:")
        assert any(f"pid {second.pid} on " in row for row in standbys), shown.stdout
        assert not any(f"pid {first.pid} on " in row for row in standbys), shown.stdout

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        await eventually(lambda: postgres_runner_pid(postgres_url) == second.pid, within=30,
                         what="the standby taking over")
        shown = status(postgres_url)
        assert shown.returncode == 0, shown.stderr
        assert f"pid {second.pid} on " in line(shown.stdout, "runner:")[0]

        stop(second)
        shown = status(postgres_url)
        assert shown.returncode == 1, shown.stdout
        assert line(shown.stdout, "runner:") == ["runner:   nobody: no scheduler process runs the jobs"]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop(process)
