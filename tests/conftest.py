"""Fixtures every test folder can use: a PostgreSQL server, and a fresh schema on it per test.

The server is the one scripts/postgres.sh finds (127.0.0.1:5432) or starts (a throwaway cluster);
tests that need it are skipped, with the script's reason, only when neither works.

Every test runs with XDG_CONFIG_HOME in a temporary folder: an HTTP server started without
--token-file keeps its token there, never in the user's real config directory.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres.sh"


class _Server:
    def __init__(self, url: str | None, folder: str | None, reason: str) -> None:
        self.url, self.folder, self.reason = url, folder, reason


@pytest.fixture(scope="session", autouse=True)
def _config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))
        yield


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


@pytest.fixture
def postgres_url(postgres_server: _Server) -> Iterator[str]:
    """A URL whose search_path is a fresh schema of this test's own (dropped afterwards)."""
    if postgres_server.url is None:
        pytest.skip(postgres_server.reason)
    import psycopg

    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_server.url else "?"
    yield f"{postgres_server.url}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


