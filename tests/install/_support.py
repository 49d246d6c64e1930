"""A user of the tests' own: a home and XDG folders in tmp_path, the CLI run as that user, servers started bare."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from mcp import Client, StdioServerParameters

BARE_PATH = "/usr/bin:/bin"
"""The PATH a desktop app or a service manager gives the programs it starts: no venv, no ~/.local/bin."""


@dataclass(frozen=True)
class User:
    """A user whose home and XDG folders are in a test's tmp_path."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def database(self) -> Path:
        """The default store of this user (platformdirs' user data dir)."""
        return self.root / "data" / "mcp-scheduler" / "scheduler.sqlite"

    def marker(self, database: Path | None = None) -> Path:
        """The service marker of `database` (default: this user's store) in this user's config folder."""
        from mcp_scheduler.runner_paths import store_key

        return self.config / "mcp-scheduler" / f"service-{store_key(str(database or self.database))}.json"

    def env(self, path: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of this user's shell (PATH as given, else this test's) without MCP_SCHEDULER_*."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_SCHEDULER_")}
        env.update({
            "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.config), "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_STATE_HOME": str(self.root / "state"), "XDG_RUNTIME_DIR": str(self.runtime),
        })
        if path is not None:
            env["PATH"] = path
        env.update(extra)
        return env

    @property
    def runtime(self) -> Path:
        folder = self.root / "run"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    def bare_env(self, **extra: str) -> dict[str, str]:
        """What a client or a service manager starts a server with: a bare PATH, HOME, no background runner."""
        return {"PATH": BARE_PATH, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.config),
                "XDG_DATA_HOME": str(self.root / "data"), "XDG_STATE_HOME": str(self.root / "state"),
                "XDG_RUNTIME_DIR": str(self.runtime), "MCP_SCHEDULER_NO_BACKGROUND_RUNNER": "1", **extra}

    def cli(self, *args: str, path: str | None = None, cwd: Path | None = None,
            **extra: str) -> subprocess.CompletedProcess[str]:
        """`python -m mcp_scheduler ARGS` as this user (the venv's python: the installation under test)."""
        return subprocess.run([sys.executable, "-m", "mcp_scheduler", *args], capture_output=True, text=True,
                              timeout=60, env=self.env(path, **extra), cwd=cwd or self.root)


def make_user(tmp_path: Path) -> User:
    user = User(tmp_path)
    user.home.mkdir(parents=True, exist_ok=True)
    return user


async def tool_names(command: str, args: list[str], env: dict[str, str]) -> set[str]:
    """The tools a server started as a client would (`command` `args`, `env` only) lists."""
    async with Client(StdioServerParameters(command=command, args=args, env=env)) as client:
        return {tool.name for tool in (await client.list_tools()).tools}
