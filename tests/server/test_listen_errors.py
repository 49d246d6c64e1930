"""An HTTP server that cannot listen says so in one line, before any "listening" line and before the
scheduler opens: a port in use names a free `--port` (and the mcp-scheduler that holds it when it serves
the same database), a `--host` that is no address of this machine names the addresses to give. Real
sockets, real server processes.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli import command, environment
from tests._net import free_port, stop, wait_until_listening


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_port_in_use_is_told_before_any_listening_line_and_another_port_suggested(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = command(tmp_path, "--transport", "http", "--port", str(port), "--db", str(tmp_path / "s.db"),
                       "--auth-token", "T")

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert not [line for line in lines if "listening" in line or "Errno" in line or "Traceback" in line], lines
    assert not [line for line in lines if "Scheduler open" in line], "the scheduler opened (took the lease) first"
    assert lines[-1].startswith(f"mcp-scheduler: Port {port} is already in use on 127.0.0.1 (by another program")
    assert "start this server with --port " in lines[-1]
    suggested = int(lines[-1].split("--port ")[1].split()[0])
    assert suggested != port and is_free(suggested)


def test_a_port_held_by_a_server_of_the_same_database_names_that_server(tmp_path: Path) -> None:
    port, database, log_path = free_port(), tmp_path / "s.db", tmp_path / "first.log"
    with log_path.open("wb") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", str(port), "--db",
             str(database), "--auth-token", "T"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=environment(tmp_path), cwd=tmp_path,
        )
    try:
        wait_until_listening(first, port, log=str(log_path))
        done = command(tmp_path, "--transport", "http", "--port", str(port), "--db", str(database),
                       "--auth-token", "T")
    finally:
        stop(first)

    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert f"Port {port} is already in use on 127.0.0.1 (by mcp-scheduler pid {first.pid}, which serves this " \
           "same database over http" in line
    assert "listening" not in done.stderr


def test_a_server_given_port_0_logs_and_serves_the_port_it_got(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", "0", "--db",
             str(tmp_path / "s.db"), "--auth-token", "T"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=environment(tmp_path), cwd=tmp_path,
        )
    try:
        found = None
        for _ in range(1200):  # the log names the port before the server answers; each miss waits on the process
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)/mcp", log_path.read_text())
            if found:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=0.05)
            assert server.returncode is None, log_path.read_text()[-3000:]
        assert found is not None and int(found.group(1)) > 0, log_path.read_text()[-3000:]
        wait_until_listening(server, int(found.group(1)), log=str(log_path))
    finally:
        stop(server)


@pytest.mark.parametrize(("host", "says"), [
    ("no-such-host.invalid", "Cannot listen on --host no-such-host.invalid: it is no address of this machine"),
    ("203.0.113.7", "Cannot listen on 203.0.113.7:0: 203.0.113.7 is not an address of this machine. Give --host "
     "127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface)"),
])
def test_a_host_that_is_no_address_of_this_machine_is_told_in_one_line(tmp_path: Path, host: str, says: str) -> None:
    done = command(tmp_path, "--transport", "http", "--port", "0", "--host", host, "--db", str(tmp_path / "s.db"),
                   "--auth-token", "T")

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()  # no traceback, no "listening" line, no scheduler opened
    assert line.startswith("mcp-scheduler: ") and says in line


async def test_a_server_of_the_same_port_that_listened_first_while_this_one_started_is_told_as_a_port_in_use(
) -> None:
    import uvicorn

    from mcp_scheduler.cli.listen import bind_listeners
    from mcp_scheduler.cli.serve import _serve_on
    from mcp_scheduler.errors import PortInUseError
    from mcp_scheduler.settings import Settings

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never served")

    ours = bind_listeners("127.0.0.1", 0)  # bound, not listening yet: a second SO_REUSEADDR socket may still bind
    port = ours[0].getsockname()[1]
    with socket.socket() as first:
        first.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        first.bind(("127.0.0.1", port))
        first.listen()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
        try:
            with pytest.raises(PortInUseError, match=f"Port {port} is already in use on 127.0.0.1 .* --port "):
                await _serve_on(server, Settings(transport="http", port=port), ours)
        finally:
            for sock in ours:
                sock.close()
