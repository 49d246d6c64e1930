"""Jobs files on disk: TOML (read with tomllib, written here), YAML (PyYAML, the `yaml` extra, imported only for
a .yaml / .yml file) and JSON, chosen by the file's suffix. The document is `{"name": ..., "jobs": [...]}`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import JobsFileError

__all__ = ["dump_document", "file_format", "load_document"]

_FORMATS = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def file_format(path: Path, given: str | None = None) -> str:
    """`given`, else the format the file's suffix names (toml, yaml or json); `JobsFileError` for another suffix."""
    if given is not None:
        return given
    found = _FORMATS.get(path.suffix.lower())
    if found is None:
        raise JobsFileError(f"{path}: a jobs file ends in .toml, .yaml, .yml or .json (or give --format).")
    return found


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise JobsFileError(
            "YAML jobs files need PyYAML: install the yaml extra (pip install 'mcp-scheduler[yaml]'), or use TOML."
        ) from None
    return yaml


def load_document(path: Path, fmt: str | None = None) -> Any:
    """The parsed contents of a jobs file; `JobsFileError` naming the file when it cannot be read or parsed."""
    kind = file_format(path, fmt)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JobsFileError(f"{path}: cannot be read ({exc}).") from None
    try:
        if kind == "toml":
            import tomllib

            return tomllib.loads(text)
        if kind == "yaml":
            yaml = _yaml()
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(str(exc)) from None
        return json.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        raise JobsFileError(f"{path}: not valid {kind.upper()}: {exc}") from None


def dump_document(document: dict[str, Any], fmt: str) -> str:
    """`document` as the text of a jobs file in `fmt`. TOML has no null: a job whose values hold one is refused
    (`JobsFileError` naming the job and the value), as YAML and JSON can hold it."""
    if fmt == "yaml":
        text: str = _yaml().safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)
        return text
    if fmt == "json":
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    lines = [f"{_key(k)} = {_value(v, k)}" for k, v in document.items() if k != "jobs"]
    for job in document.get("jobs", []):
        lines += ["", "[[jobs]]"]
        where = f"job {job.get('job_id')!r}"
        tables = {k: v for k, v in job.items() if isinstance(v, dict) and v}
        lines += [f"{_key(k)} = {_value(v, f'{where}: {k}')}" for k, v in job.items() if k not in tables]
        for name, table in tables.items():
            lines += ["", f"[jobs.{_key(name)}]"]
            lines += [f"{_key(k)} = {_value(v, f'{where}: {name}.{k}')}" for k, v in table.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are TOML's (\" \\ \b \f \n \r \t \uXXXX); DEL must be escaped in TOML too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any, where: str) -> str:
    if value is None:
        raise JobsFileError(
            f"{where} is null, which TOML cannot hold: export to a .yaml or .json file (--format yaml or json)."
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if value == value and abs(value) != float("inf") else _nonfinite(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_value(v, f'{where}.{k}')}" for k, v in value.items()) + " }"
    raise JobsFileError(f"{where}: a {type(value).__name__} cannot be written to a jobs file.")


def _nonfinite(value: float) -> str:
    return "nan" if value != value else ("inf" if value > 0 else "-inf")
