"""Run `mcp-scheduler` as a user would, in a subprocess whose folders are all in the test's tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout (put on PYTHONPATH after a shadow folder)."""

HIDE_PSYCOPG = '''\
import sys


class _NoPsycopg:
    """As in an environment installed without the postgres extra: psycopg cannot be found."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("psycopg", "psycopg_binary", "psycopg_c"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoPsycopg())
'''
BROKEN_PSYCOPG = 'raise ImportError("no pq wrapper available.\\nAttempts made:\\n- couldn\'t import psycopg \'c\'")\n'


def environment(tmp_path: Path, *, hide: str | None = None) -> dict[str, str]:
    """The server's environment: the user's folders in tmp_path, no background runner, psycopg hidden if asked."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MCP_SCHEDULER_")}
    home = tmp_path / "home"
    (home / "run").mkdir(mode=0o700, parents=True, exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
               XDG_STATE_HOME=str(home / "state"), XDG_RUNTIME_DIR=str(home / "run"),
               MCP_SCHEDULER_NO_BACKGROUND_RUNNER="1")
    if hide is not None:
        shadow = tmp_path / "shadow"
        shadow.mkdir(exist_ok=True)
        if hide == "missing":
            (shadow / "sitecustomize.py").write_text(HIDE_PSYCOPG)
        else:
            (shadow / "psycopg").mkdir(exist_ok=True)
            (shadow / "psycopg" / "__init__.py").write_text(BROKEN_PSYCOPG)
        env["PYTHONPATH"] = os.pathsep.join([str(shadow), str(ROOT)])
    return env


def command(tmp_path: Path, *args: str, hide: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`mcp-scheduler ARGS` run to its end in `tmp_path`, stdin closed; `env` adds variables."""
    return subprocess.run(
        [sys.executable, "-m", "mcp_scheduler", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120, cwd=tmp_path, env={**environment(tmp_path, hide=hide), **(env or {})}, check=False,
    )
