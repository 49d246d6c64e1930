"""Fixtures every test folder can use: a PostgreSQL server, and a fresh schema on it per test.

The server is the one scripts/postgres.sh finds (127.0.0.1:5432) or starts (a throwaway cluster);
tests that need it are skipped, with the script's reason, only when neither works.

Every test runs with XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_STATE_HOME and XDG_RUNTIME_DIR in temporary folders
(an HTTP server started without --token-file keeps its token there, a background runner its log and socket,
never in the user's real directories) and with MCP_SCHEDULER_NO_BACKGROUND_RUNNER=1: a server that a test
starts never leaves a background runner behind by accident, and with MCP_SCHEDULER_NO_CONFIRM=1: the servers that
tests start do not ask the user before cancel_job, stop_scheduler or a shell job (tests/server/test_confirmation.py
turns the questions back on for its servers, as they are by default). The tests of the runner turn it back on for
their own processes (tests/runner), end every runner they start by its pid, and the session ends by checking
that no runner started under its folders is left, and that no test registered an AgenTool into the process-default
injector (a test that needs an injector names one: the `injector` fixture of its folder, or a runtime's).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import mcp.client.stdio
import pytest

from agentool_bridge import get_injector
from tests._processes import end_runners_under

pytest_plugins = ["tests._figures_plugin", "tests._hang_backstop"]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


class _Server:
    def __init__(self, url: str | None, folder: str | None, reason: str) -> None:
        self.url, self.folder, self.reason = url, folder, reason


ISOLATION = ("MCP_SCHEDULER_NO_BACKGROUND_RUNNER", "MCP_SCHEDULER_NO_CONFIRM", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
             "XDG_STATE_HOME", "XDG_RUNTIME_DIR")
"""What the session sets for every process it starts; also passed to the stdio servers that MCP clients start
(the SDK gives a child only HOME, PATH and a few more unless told otherwise)."""


@pytest.fixture(scope="session", autouse=True)
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's XDG_RUNTIME_DIR is `runtime_root/session`; the runner tests make theirs beside it.

    The one autouse fixture of the session (the other, `postgres_schemas`, is per test): it sets what every
    process of the session needs, and checks what no test may leave behind (background runners; AgenTools in the
    process-default injector)."""
    # Short (a socket path has at most ~100 bytes) and private; the runner tests make theirs inside it.
    runtime_root = Path(tempfile.mkdtemp(prefix="mcps-"))
    session_runtime = runtime_root / "session"
    session_runtime.mkdir(mode=0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data-home")))
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state-home")))
        patch.setenv("XDG_RUNTIME_DIR", str(session_runtime))
        patch.setenv("MCP_SCHEDULER_NO_BACKGROUND_RUNNER", "1")
        patch.setenv("MCP_SCHEDULER_NO_CONFIRM", "1")
        inherited = list(mcp.client.stdio.DEFAULT_INHERITED_ENV_VARS)
        patch.setattr(mcp.client.stdio, "DEFAULT_INHERITED_ENV_VARS", [*inherited, *ISOLATION])
        yield runtime_root
    left = end_runners_under(runtime_root, databases=tmp_path_factory.getbasetemp())
    shutil.rmtree(runtime_root, ignore_errors=True)
    default = get_injector()  # no injector is active here: this is the process default
    in_default = default.registry.names()
    default.clear()
    assert not left, f"background runners left running after the tests (ended now): {left}"
    assert not in_default, f"tests registered into the process-default injector (name a fixture): {in_default}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_Server]:
    """The base URL of a PostgreSQL server for the session (started here if needed, stopped at the end)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield _Server(None, None, "psycopg is not installed: pip install -e '.[dev]' (or '.[postgres]')")
        return
    done = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False)
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        yield _Server(None, None, f"no PostgreSQL server: scripts/postgres.sh said: {done.stderr.strip()[-1000:]}")
        return
    server = _Server(lines[0], lines[1] if len(lines) > 1 else None, "")
    yield server
    if server.folder is not None:
        subprocess.run([str(SCRIPT), "stop", server.folder], capture_output=True, timeout=120, check=False)


@pytest.fixture(autouse=True)
def postgres_schemas() -> Iterator[list[tuple[str, str]]]:
    """The schemas `postgres_url` made for this test, as (server URL, schema): dropped once the test's other
    fixtures are torn down. Autouse fixtures are set up first, so this one is torn down last: a runtime, server
    or store that a test opened on its schema is closed before the schema goes, whatever order the test asks for
    its fixtures in (a schema dropped under a live runtime failed its last writes: relation does not exist)."""
    made: list[tuple[str, str]] = []
    yield made
    if not made:
        return
    import psycopg

    for url, schema in made:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url(postgres_server: _Server, postgres_schemas: list[tuple[str, str]]) -> str:
    """A URL whose search_path is a fresh schema of this test's own (dropped after the test: `postgres_schemas`)."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    import psycopg

    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    postgres_schemas.append((postgres_server.url, schema))
    separator = "&" if "?" in postgres_server.url else "?"
    return f"{postgres_server.url}{separator}options=-csearch_path%3D{schema}"


