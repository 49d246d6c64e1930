"""The input model of the `shell` AgenTool and its limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ...errors import clip
from ...models import BaseOperationInput
from .._common import check_text
from ._env import SAFE_LISTING

__all__ = ["DEFAULT_MAX_OUTPUT", "DEFAULT_TIMEOUT", "MAX_OUTPUT", "MAX_STDIN", "MAX_TIMEOUT", "ShellInput"]

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
DEFAULT_MAX_OUTPUT = 64 * 1024
MAX_OUTPUT = 1024 * 1024
MAX_STDIN = 1024 * 1024


class ShellInput(BaseOperationInput):
    """Run an allowed program with arguments (never through a shell) and return its exit code, stdout and stderr."""

    operation: Literal["run"] = Field(description="The shell operation to perform: run a program.")
    argv: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="The program and its arguments, e.g. [\"git\", \"-C\", \"/srv/repo\", \"pull\"]. No shell is "
        "involved: ';', '|', '>', '$VAR' and '*' are passed literally; only a leading '~' is expanded, to the home "
        "folder of the user the server runs as. argv[0] must be a program the server allows (a name on the "
        "server's PATH, or an absolute path). A relative path ('./notes.txt') needs cwd.",
    )
    cwd: str | None = Field(
        default=None,
        description="Absolute directory to run in (must exist; '~' as in argv); default: the server's working "
        "directory.",
    )
    env: dict[str, str] | None = Field(
        default=None,
        description=f"Environment variables to set for the program. Allowed names: {SAFE_LISTING}, and the names "
        "the server allows with --shell-env. Loader, interpreter and tool-config variables (PATH, HOME, LD_*, "
        "BASH_*, PYTHON*, PERL*, GIT_*, BROWSER, EDITOR, proxies, ...) are always refused. The program does not "
        "inherit the server's environment: only PATH, HOME, USER, LOGNAME, LANG, LC_*, TZ, TMPDIR, TERM and the "
        "--shell-env names, with the server's values. Use '!env:NAME' values for secrets (NAME must be a secret "
        "the operator allows with --secret NAME).",
    )
    stdin: str | None = Field(
        default=None, max_length=MAX_STDIN, description="Text to write to the program's standard input; default: none."
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"Seconds the program may run (at most {MAX_TIMEOUT:g}), counting the wait for its turn when the "
        "server's limit of shell runs at once is reached; then it and every process it started are killed and the "
        "run fails.",
    )
    max_output_bytes: int = Field(
        default=DEFAULT_MAX_OUTPUT,
        ge=1,
        le=MAX_OUTPUT,
        description="Bytes of stdout and of stderr kept (each; at most 1 MB). Longer output is read to the end but "
        "cut, and marked as truncated.",
    )
    ok_exit_codes: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        max_length=256,
        description="Exit codes that count as success; any other one fails the run.",
    )

    @field_validator("argv")
    @classmethod
    def check_argv(cls, value: list[str]) -> list[str]:
        """Arguments are text without NUL characters; the program name is not blank."""
        for index, argument in enumerate(value):
            check_text(f"argv[{index}]", argument)
        if not value[0].strip():
            raise ValueError("argv[0] must name a program")
        return value

    @field_validator("cwd")
    @classmethod
    def check_cwd(cls, value: str | None) -> str | None:
        """A directory path is text without NUL characters."""
        return None if value is None else check_text("cwd", value)

    @field_validator("env")
    @classmethod
    def check_env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """Variable names are non-empty and have no '='; names and values have no NUL characters."""
        for name, text in (value or {}).items():
            if not name or "=" in name:
                raise ValueError(f"env: invalid variable name {clip(name)} (non-empty, no '=')")
            check_text(f"env name {clip(name, 50)}", name)
            check_text(f"env[{clip(name, 50)}]", text)
        return value

