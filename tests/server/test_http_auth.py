"""Who may use a local HTTP server: by default only whoever can read its token file (the server's user).

Real `mcp-scheduler --transport http` processes on 127.0.0.1, real token files in the test's folders, raw
requests and real MCP clients; the other local user is a real process running as uid 65534.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from tests._net import INITIALIZE, MCP_HEADERS, authorized, free_port, read_token, stop, wait_until_listening

from .conftest import run_cli, scheduler_command, structured

WARNING = "any local user can run jobs as this user"
NOBODY = 65534


@dataclass
class Running:
    """A server process, where it listens and the file its stderr goes to."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None, name: str = "server"
            ) -> Iterator[Running]:
    """`mcp-scheduler --transport http` on 127.0.0.1 with ARGS, running until the block ends."""
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            scheduler_command("--transport", "http", "--port", str(port), "--db", str(tmp_path / "s.db"),
                              "--timezone", "UTC", *args),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink, env={**os.environ, **(env or {})},
        )
    try:
        wait_until_listening(process, port, log=str(log))
        yield Running(process, f"http://127.0.0.1:{port}/mcp", log)
    finally:
        stop(process)




async def call_tool(url: str, job_id: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    """What any local process can do: initialize, then tools/call schedule_job in that session (raw HTTP).

    Returns the first answer that is not a success, else the tools/call answer.
    """
    arguments = {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
                 "input_data": {"operation": "log", "level": "INFO", "message": "x"}, "job_id": job_id}
    async with httpx2.AsyncClient(timeout=20, headers=MCP_HEADERS | (headers or {})) as raw:
        hello = await raw.post(url, json=INITIALIZE)
        if hello.status_code != 200:
            return hello
        session = {k: v for k, v in hello.headers.items() if k.lower() == "mcp-session-id"}
        await raw.post(url, headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        return await raw.post(url, headers=session, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "schedule_job", "arguments": arguments}})


async def job_ids(url: str, token: str) -> list[str]:
    async with Client(authorized(url, token)) as client:
        page = structured(await client.call_tool("list_jobs", {"limit": 1000}))
    return [j["job_id"] for j in page["jobs"]]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------- the default: a token only the user has


async def test_a_default_http_server_on_loopback_refuses_an_unauthenticated_tool_call(tmp_path: Path) -> None:
    """The probe: `make run` answered any local process's tools/call. Now 401, and the token file is private."""
    config_home = tmp_path / "config"
    with serving(tmp_path, env={"XDG_CONFIG_HOME": str(config_home)}) as server:
        response = await call_tool(server.url, "from-anyone")

        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        token_file = config_home / "mcp-scheduler" / "token"  # platformdirs' user config dir, under XDG_CONFIG_HOME
        assert mode_of(token_file) == 0o600
        assert mode_of(token_file.parent) == 0o700 and mode_of(config_home) == 0o700  # created by the server
        assert await job_ids(server.url, read_token(token_file)) == []  # the refused call changed nothing


def _python_for(uid: int) -> str | None:
    """A Python interpreter that a process of `uid` may run (this venv's may sit in a folder only root enters)."""
    candidates = [os.path.realpath(sys.executable), shutil.which("python3"), "/usr/bin/python3",
                  "/usr/local/bin/python3"]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            done = subprocess.run([candidate, "-I", "-c", "pass"], user=uid, group=uid, extra_groups=[], cwd="/",
                                  capture_output=True, timeout=30)
        except OSError:
            continue
        if done.returncode == 0:
            return candidate
    return None


OTHER_USER = r"""
import json, sys, urllib.error, urllib.request
url, token_file = sys.argv[1], sys.argv[2]
try:
    open(token_file).read()
    read = "read"
except OSError as exc:
    read = type(exc).__name__
statuses = []
body = json.dumps(json.loads(sys.argv[3])).encode()
for headers in ({}, {"Authorization": "Bearer guessed"}, {"Authorization": "Bearer "}):
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Accept": "application/json, text/event-stream", "Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            statuses.append(response.status)
    except urllib.error.HTTPError as exc:
        statuses.append(exc.code)
print(json.dumps({"read": read, "statuses": statuses}))
"""


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder the other user may enter and list (/tmp/pytest-of-root is root's only), so that only the
    token file's own mode keeps it from reading the token."""
    shared = Path(tempfile.mkdtemp(prefix="mcp-scheduler-auth-"))
    try:
        shared.chmod(0o755)
        yield shared
    finally:
        shutil.rmtree(shared, ignore_errors=True)


async def test_another_local_user_can_neither_read_the_token_file_nor_call_a_tool(shared_folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the other local user's client as uid 65534 (the tests run as root in CI)")
    python = _python_for(NOBODY)
    if python is None:
        pytest.skip(f"no Python interpreter that uid {NOBODY} may run")
    token_file = shared_folder / "token"
    with serving(shared_folder, "--token-file", str(token_file)) as server:
        other = await asyncio.to_thread(
            subprocess.run,
            [python, "-I", "-c", OTHER_USER, server.url, str(token_file), json.dumps(INITIALIZE)],
            user=NOBODY, group=NOBODY, extra_groups=[], cwd="/", capture_output=True, text=True, timeout=60,
        )
        assert other.returncode == 0, other.stderr
        seen = json.loads(other.stdout)

        assert seen == {"read": "PermissionError", "statuses": [401, 401, 401]}
        assert await job_ids(server.url, read_token(token_file)) == []


async def test_the_token_is_printed_once_when_generated_and_later_starts_name_only_its_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    with serving(tmp_path, "--token-file", str(token_file), name="first") as first:
        token = read_token(token_file)
        first_log = first.log_text()
    with serving(tmp_path, "--token-file", str(token_file), name="second") as second:
        second_log = second.log_text()
        assert read_token(token_file) == token  # kept, not generated again
        assert await job_ids(second.url, token) == []

    assert first_log.count(token) == 1
    assert f"mcp-scheduler token --token-file {token_file}" in first_log
    assert token not in second_log
    assert f"the token is in {token_file}" in second_log
    assert f"mcp-scheduler token --token-file {token_file}" in second_log  # how to connect, at every start


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o622], ids=oct)
def test_a_token_file_that_others_can_read_or_write_is_refused_with_the_chmod_hint(
    tmp_path: Path, mode: int
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("a-token-that-others-could-read\n")
    token_file.chmod(mode)

    served = run_cli("--transport", "http", "--port", str(free_port()), "--db", str(tmp_path / "s.db"),
                     "--token-file", str(token_file), timeout=20)
    printed = run_cli("token", "--token-file", str(token_file), timeout=20)

    for done in (served, printed):
        assert done.returncode == 1, done.stderr
        assert f"chmod 600 {token_file}" in done.stderr and f"{mode:04o}" in done.stderr
        assert "a-token-that-others-could-read" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr
    assert mode_of(token_file) == mode  # the server tells the user; it changes nothing itself


def test_a_token_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to give the token file to uid 65534 (the tests run as root in CI)")
    token_file = tmp_path / "token"
    token_file.write_text("a-token-someone-else-wrote\n")
    token_file.chmod(0o600)
    os.chown(token_file, NOBODY, NOBODY)

    done = run_cli("--transport", "http", "--port", str(free_port()), "--db", str(tmp_path / "s.db"),
                   "--token-file", str(token_file), timeout=20)

    assert done.returncode == 1
    assert f"belongs to uid {NOBODY}, not to this user (uid 0)" in done.stderr and "chmod 600" in done.stderr
    assert "a-token-someone-else-wrote" not in done.stderr


async def test_mcp_scheduler_token_prints_the_token_the_server_accepts(tmp_path: Path) -> None:
    token_file = tmp_path / "config" / "token"
    generated = run_cli("token", "--token-file", str(token_file))
    assert generated.returncode == 0, generated.stderr
    token = generated.stdout.strip()
    assert generated.stdout == token + "\n" and len(token) >= 43  # secrets.token_urlsafe(32)
    assert f"generated a new token in {token_file}" in generated.stderr
    assert mode_of(token_file) == 0o600 and mode_of(token_file.parent) == 0o700

    with serving(tmp_path, "--token-file", str(token_file)) as server:
        async with Client(authorized(server.url, token)) as client:
            status = structured(await client.call_tool("scheduler_status", {}))
        assert status["running"] is True
        assert (await call_tool(server.url, "x", {"Authorization": f"Bearer {token}x"})).status_code == 401
        assert token not in server.log_text()  # the command made it: the server never prints it

    again = run_cli("token", "--token-file", str(token_file))
    assert (again.returncode, again.stdout, again.stderr) == (0, token + "\n", "")


def test_mcp_scheduler_token_defaults_to_the_user_config_directory(tmp_path: Path) -> None:
    first = run_cli("token", env={"XDG_CONFIG_HOME": str(tmp_path)})
    second = run_cli("token", env={"XDG_CONFIG_HOME": str(tmp_path)})

    assert first.returncode == 0 and first.stdout == second.stdout
    assert read_token(tmp_path / "mcp-scheduler" / "token") == first.stdout.strip()


def test_mcp_scheduler_token_refuses_when_auth_tokens_are_set(tmp_path: Path) -> None:
    done = run_cli("token", "--token-file", str(tmp_path / "token"), env={"MCP_SCHEDULER_AUTH_TOKEN": "tok"})

    assert done.returncode == 2 and done.stdout == ""
    assert "MCP_SCHEDULER_AUTH_TOKEN" in done.stderr and "not the token file's" in done.stderr
    assert not (tmp_path / "token").exists()


# ---------------------------------------------------------------------- what the operator may choose instead


async def test_allow_unauthenticated_on_loopback_serves_anyone_and_logs_a_warning(tmp_path: Path) -> None:
    config_home = tmp_path / "config"
    with serving(tmp_path, "--allow-unauthenticated", env={"XDG_CONFIG_HOME": str(config_home)}) as server:
        response = await call_tool(server.url, "from-anyone")
        log = server.log_text()

    assert response.status_code == 200 and '"isError":false' in response.text.replace(" ", ""), response.text
    [warning] = [line for line in log.splitlines() if WARNING in line]
    assert " WARNING " in warning and "--allow-unauthenticated" in warning and server.url in warning
    assert not config_home.exists()  # no token file is made for a server that takes none


async def test_auth_tokens_replace_the_token_file(tmp_path: Path) -> None:
    config_home = tmp_path / "config"
    with serving(tmp_path, "--auth-token", "operator-token", env={"XDG_CONFIG_HOME": str(config_home)}) as server:
        assert (await call_tool(server.url, "a")).status_code == 401
        assert await job_ids(server.url, "operator-token") == []
        log = server.log_text()

    assert not config_home.exists()
    assert "operator-token" not in log and "token given by --auth-token" in log and WARNING not in log


def test_beyond_loopback_a_token_file_the_operator_names_is_a_token() -> None:
    from mcp_scheduler.cli import check_exposure
    from mcp_scheduler.settings import Settings

    wildcard = Settings(transport="http", host="0.0.0.0")
    with pytest.raises(ValueError, match="--token-file FILE"):
        check_exposure(wildcard)
    check_exposure(Settings(transport="http", host="0.0.0.0", token_file="/srv/scheduler/token"))
    check_exposure(Settings(transport="http", host="0.0.0.0", allow_unauthenticated=True))
