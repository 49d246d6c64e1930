"""Set-up mistakes end `mcp-scheduler` in one plain line that says what to do, never in a traceback.

Each case runs the real command in a subprocess: a PostgreSQL URL where psycopg cannot be imported
(a `sitecustomize` on PYTHONPATH hides it, as in an environment installed without the `postgres`
extra), and the other mistakes an operator makes with paths and flags (a port in use and a
--host that is not this machine's: test_listen_errors.py).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests._cli import ROOT, command, environment

POSTGRES_URL = "postgresql://scheduler@127.0.0.1:1/none"  # never reached: the missing driver is found first


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line the command ended with (asserting it printed nothing else and no traceback)."""
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


COMMANDS = [
    pytest.param([], id="serve-stdio"),
    pytest.param(["--transport", "http", "--port", "0", "--auth-token", "T"], id="serve-http"),
    pytest.param(["jobs"], id="jobs"),
    pytest.param(["history"], id="history"),
    pytest.param(["status"], id="status"),
    pytest.param(["run", "nightly"], id="run"),
    pytest.param(["pause", "nightly"], id="pause"),
    pytest.param(["resume", "nightly"], id="resume"),
    pytest.param(["cancel", "nightly"], id="cancel"),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_a_postgresql_database_without_psycopg_ends_in_one_line_naming_the_install_command(
    tmp_path: Path, args: list[str]
) -> None:
    done = command(tmp_path, *args, "--db", POSTGRES_URL, hide="missing")

    assert done.returncode == 1
    line = one_line(done)
    assert line.startswith("mcp-scheduler")
    assert "PostgreSQL support is not installed in this environment" in line
    assert f"{sys.executable} -m pip install 'mcp-scheduler[postgres]'" in line
    assert "pipx inject mcp-scheduler 'psycopg[binary]" in line
    assert "ModuleNotFoundError" not in line


def test_a_python_program_gets_the_same_line_from_scheduler_runtime(tmp_path: Path) -> None:
    program = (
        "from agentool_bridge import MissingExtraError\n"
        "from mcp_scheduler import SchedulerRuntime, ServiceConfig\n"
        "try:\n"
        f"    SchedulerRuntime(ServiceConfig(database={POSTGRES_URL!r}))\n"
        "except MissingExtraError as exc:\n"
        "    print(exc.extra, isinstance(exc, ImportError), exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          env=environment(tmp_path, hide="missing"), cwd=tmp_path, check=False)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("postgres True PostgreSQL support is not installed in this environment: ")
    assert "-m pip install 'mcp-scheduler[postgres]'" in done.stdout


def test_a_psycopg_that_cannot_load_is_told_with_its_reason_and_the_install_command(tmp_path: Path) -> None:
    done = command(tmp_path, "jobs", "--db", POSTGRES_URL, hide="broken")

    assert done.returncode == 1
    line = one_line(done)
    assert "PostgreSQL support cannot be loaded in this environment (psycopg: no pq wrapper available.)" in line
    assert "-m pip install 'mcp-scheduler[postgres]'" in line


def test_the_install_command_asks_for_what_the_postgres_extra_declares() -> None:
    from agentool_bridge.extras import POSTGRES

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras[POSTGRES.name] == [POSTGRES.requirement]


def mistakes(tmp_path: Path) -> list[tuple[list[str], dict[str, str], int, str]]:
    """(arguments, environment, exit code, what the one line says) for each set-up mistake checked."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("these are my notes, not a database\n" * 20)
    db = str(tmp_path / "s.db")
    http = ["--transport", "http", "--port", "0"]
    return [
        (["--db", str(tmp_path)], {}, 1, f"The database {tmp_path} is a folder, not a file: pass --db FILE"),
        (["--db", str(a_file / "s.db")], {}, 1, f"{a_file} is a file, not a folder; pass --db FILE"),
        (["--db", str(not_sqlite)], {}, 1, f"{not_sqlite} is not a SQLite database (file is not a database): pass "
         "--db"),
        (["--db", db, "--log-dir", str(a_file)], {}, 1, f"--log-dir {a_file} is a file, not a folder"),
        (["--db", db, "--log-dir", str(a_file / "logs")], {}, 1, f"{a_file} is a file, not a folder; give another"),
        (["--db", db, "--servers", str(tmp_path / "missing.json")], {}, 1, "Cannot read the servers file"),
        (["--db", db, "--timezone", "Mars/Olympus"], {}, 1, "Unknown time zone 'Mars/Olympus' (not an IANA"),
        (["--db", db, "--toolkit", "no_such_package.tools:create"], {}, 1,
         "Cannot import toolkit module 'no_such_package.tools': No module named 'no_such_package' (--toolkit"),
        ([*http, "--db", db, "--token-file", str(a_file / "token")], {}, 1,
         f"Cannot read the token file {a_file / 'token'} ({a_file} is a file, not a folder): give --token-file"),
        (["--transport", "http", "--port", "70000", "--db", db], {}, 2,
         "argument --port: expected a port number from 1 to 65535"),
        (["--transport", "http", "--path", "mcp", "--db", db], {}, 2,
         "argument --path: expected a URL path that starts with '/'"),
        (["jobs", "--db", db], {"MCP_SCHEDULER_MAX_JOBS": "many"}, 2,
         "argument --max-jobs: expected a whole number of at least 1, got 'many' (MCP_SCHEDULER_MAX_JOBS is set)"),
        (["jobs", "--db", str(tmp_path)], {}, 1, f"mcp-scheduler jobs: {tmp_path} is a folder, not a scheduler "
         "database"),
        (["status", "--db", str(tmp_path)], {}, 1, f"mcp-scheduler status: {tmp_path} is a folder, not a scheduler "
         "database"),
        (["history", "--db", str(not_sqlite)], {}, 1, f"{not_sqlite} is not a scheduler database (SQLite: file is "
         "not a database)"),
        (["token", "--token-file", str(a_file / "token")], {}, 1, "Cannot read the token file"),
    ]


def test_every_set_up_mistake_checked_ends_in_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    failures: list[str] = []
    cases = mistakes(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:  # each command is a second or two of imports
        ended = list(pool.map(lambda case: command(tmp_path, *case[0], env=case[1]), cases))
    for (args, env, code, says), done in zip(cases, ended, strict=True):
        lines = done.stderr.strip().splitlines()
        last = lines[-1] if lines else ""
        usage_only = code == 2 and all(line.startswith((" ", "usage:")) for line in lines[:-1])
        plain = "Traceback" not in done.stderr and (len(lines) == 1 or usage_only)
        if done.returncode != code or not plain or says not in last:
            failures.append(f"{args} {env}: exit {done.returncode}, stderr:\n{done.stderr[-1500:]}")
    assert failures == [], "\n\n".join(failures)

