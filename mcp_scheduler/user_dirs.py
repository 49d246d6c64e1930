"""The user's data, config and state folders of mcp-scheduler, without loading platformdirs on Linux.

On Linux these are the XDG folders, read as platformdirs reads them (`$XDG_DATA_HOME/mcp-scheduler` if that
variable holds an absolute path, else `~/.local/share/mcp-scheduler`; likewise config and state). Elsewhere
platformdirs decides. The front-end that pipes a chat client to a running scheduler needs the default
database's path before anything else, and platformdirs costs more to import than that whole front-end.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

__all__ = ["APP", "user_dir"]

APP = "mcp-scheduler"

_XDG = {"data": ("XDG_DATA_HOME", ".local/share"), "config": ("XDG_CONFIG_HOME", ".config"),
        "state": ("XDG_STATE_HOME", ".local/state")}


def user_dir(kind: Literal["data", "config", "state"]) -> Path:
    """mcp-scheduler's folder of this kind for the user (not created)."""
    if sys.platform.startswith("linux"):
        variable, default = _XDG[kind]
        base = os.environ.get(variable, "")
        if not os.path.isabs(base):
            base = os.path.join(_home(), default)
        return Path(base) / APP
    import platformdirs

    finder = {"data": platformdirs.user_data_dir, "config": platformdirs.user_config_dir,
              "state": platformdirs.user_state_dir}[kind]
    return Path(finder(APP, appauthor=False))


def _home() -> str:
    home = os.environ.get("HOME", "")
    if os.path.isabs(home):
        return home
    import pwd  # a relative or missing HOME counts as unset, as platformdirs has it

    return pwd.getpwuid(os.getuid()).pw_dir
