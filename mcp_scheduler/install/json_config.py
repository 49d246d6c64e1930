"""Merging one server entry into a client's JSON configuration file, and nothing else.

Every other key and server stays as it was (in its order); a file that changes is first copied to a
timestamped backup beside it; the new text replaces the old in one rename, so a client never reads a
half-written file; a file that is not a JSON object is refused and left untouched.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..private_files import replace_file
from .errors import ConfigFileError

__all__ = ["MergeResult", "dump_json", "load_config", "merge_entry"]


@dataclass(frozen=True)
class MergeResult:
    """What `merge_entry` did to the file."""

    path: Path
    changed: bool
    created: bool = False
    replaced: dict[str, Any] | None = None
    """The entry of the same name that was there before and differed (None if there was none)."""
    backup: Path | None = None


def dump_json(value: Any) -> str:
    """JSON as the clients' own files are written: two-space indent, UTF-8 as is, a final newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def load_config(path: Path) -> dict[str, Any]:
    """The JSON object in `path` ({} for a missing or empty file); `ConfigFileError` if it is anything else."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"Cannot read {path}: {exc}. Nothing was written.") from None
    if not text.strip():
        return {}
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = (" It seems to hold comments or trailing commas (JSON with comments, which VS Code accepts); "
                "they would be lost in a rewrite." if _looks_like_jsonc(text) else "")
        raise ConfigFileError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).{hint} "
            "Nothing was written: fix the file (or move it away) and run this again, or add the entry "
            "yourself (--print shows it)."
        ) from None
    if not isinstance(loaded, dict):
        raise ConfigFileError(
            f"{path} holds a JSON {type(loaded).__name__}, not an object: nothing was written. A client's "
            "configuration is an object such as {\"mcpServers\": {...}}; fix the file or add the entry yourself "
            "(--print shows it)."
        )
    return loaded


def merge_entry(path: Path, servers_key: str, name: str, entry: dict[str, Any], *,
                now: datetime | None = None) -> MergeResult:
    """Put `entry` under `servers_key` > `name` in the JSON file `path` (created if missing).

    An identical entry changes nothing. Raises `ConfigFileError` (the file untouched) when the file is
    not a JSON object or its `servers_key` is not an object.
    """
    target = path.resolve() if path.is_symlink() else path  # a dotfile manager's link stays a link
    config = load_config(target)
    servers = config.get(servers_key, {})
    if not isinstance(servers, dict):
        raise ConfigFileError(
            f"{path}: {servers_key!r} is a JSON {type(servers).__name__}, not an object of servers: nothing was "
            "written. Fix the file, or add the entry yourself (--print shows it)."
        )
    previous = servers.get(name)
    if previous == entry:
        return MergeResult(path, changed=False)
    config[servers_key] = {**servers, name: entry}
    existed = target.exists()
    backup = _backup(target, now or datetime.now()) if existed else None
    _replace(target, dump_json(config))
    return MergeResult(path, changed=True, created=not existed,
                       replaced=previous if isinstance(previous, dict) else None, backup=backup)


def _looks_like_jsonc(text: str) -> bool:
    comment = any(line.lstrip().startswith(("//", "/*")) for line in text.splitlines())
    return comment or re.search(r",\s*[}\]]", text) is not None


def _backup(path: Path, now: datetime) -> Path:
    stem = f"{path.name}.bak-{now:%Y%m%d-%H%M%S}"
    backup = path.with_name(stem)
    counter = 1
    while backup.exists():
        counter += 1
        backup = path.with_name(f"{stem}-{counter}")
    shutil.copy2(path, backup)
    return backup


def _replace(path: Path, text: str) -> None:
    """Write `text` over `path` atomically, keeping the old file's mode (a new one is 0600: a client
    configuration may come to hold other servers' secrets in their env)."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o600
    replace_file(path, text.encode("utf-8"), mode)
