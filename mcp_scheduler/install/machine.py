"""What the installers need to know about this machine and user, handed over by the CLI.

The CLI is the only module that reads the environment; it builds a `Machine` from it, and tests build
one that points every folder at a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Machine"]


@dataclass(frozen=True)
class Machine:
    """The platform, the user's home, the environment and the Python that runs this installation."""

    platform: str
    """`sys.platform`: 'linux', 'darwin' or 'win32' (others are treated as Linux)."""
    home: Path
    environ: Mapping[str, str] = field(default_factory=dict)
    executable: str = sys.executable
    """The interpreter of this installation, as started (a venv's `bin/python`: never resolved past its link)."""

    @classmethod
    def current(cls, environ: Mapping[str, str]) -> Machine:
        """This machine, with `environ` (the CLI passes `os.environ`)."""
        return cls(platform=sys.platform, home=Path.home(), environ=dict(environ),
                   executable=os.path.abspath(sys.executable))

    @property
    def is_macos(self) -> bool:
        return self.platform == "darwin"

    @property
    def is_windows(self) -> bool:
        return self.platform == "win32"

    def config_home(self) -> Path:
        """`$XDG_CONFIG_HOME` when it is an absolute path, else `~/.config` (Linux and other Unixes)."""
        value = self.environ.get("XDG_CONFIG_HOME", "")
        return Path(value) if value and os.path.isabs(value) else self.home / ".config"

    def app_data(self) -> Path:
        """Windows: `%APPDATA%` (the roaming profile folder)."""
        value = self.environ.get("APPDATA", "")
        return Path(value) if value else self.home / "AppData" / "Roaming"

    def which(self, program: str) -> str | None:
        """The absolute path of `program` on this environment's PATH, or None."""
        return shutil.which(program, path=self.environ.get("PATH", os.defpath))
