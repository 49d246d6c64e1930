"""What a `shell` program's environment holds: the tricks that turn an allowed program into any command through
environment variables (BASH_ENV, exported bash functions, GIT_CONFIG_*, PYTHONWARNINGS with BROWSER, PERL5OPT
with PERL5DB) are refused when a job sets them and never inherited from the server; the server's secrets and
settings stay out of programs' reach."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.shell import EnvironmentNotAllowedError, ShellRunner, create_shell_agent
from mcp_scheduler import SchedulerInput, SchedulerRuntime, ServiceConfig

PYTHON = sys.executable
EVERY_EXIT_CODE = list(range(256))


@dataclass(frozen=True)
class Trick:
    """Environment variables that make `argv` (with only `allowed` allowed) run `touch MARK`."""

    allowed: tuple[str, ...]
    argv: tuple[str, ...]
    env: dict[str, str]
    needs: tuple[str, ...] = ()

    def arm(self, tmp_path: Path) -> tuple[list[str], list[str], dict[str, str], Path]:
        """Allowed programs, argv and env for a run in `tmp_path`, and the file the trick would create."""
        script = tmp_path / "job.sh"
        script.write_text("#!/bin/bash\ncp /dev/null /dev/null\necho done\n")
        script.chmod(0o755)
        marker = tmp_path / "pwned"

        def fill(text: str) -> str:
            return text.replace("SCRIPT", str(script)).replace("MARK", str(marker))

        return (
            [fill(a) for a in self.allowed],
            [fill(a) for a in self.argv],
            {name: fill(value) for name, value in self.env.items()},
            marker,
        )


TRICKS = {
    "BASH_ENV": Trick(("SCRIPT",), ("SCRIPT",), {"BASH_ENV": "$(touch MARK)"}, needs=("bash",)),
    "BASH_FUNC_cp%%": Trick(("SCRIPT",), ("SCRIPT",), {"BASH_FUNC_cp%%": "() { touch MARK; }"}, needs=("bash",)),
    "GIT_CONFIG_COUNT": Trick(
        ("git",), ("git", "st"),
        {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "alias.st", "GIT_CONFIG_VALUE_0": "!touch MARK"},
        needs=("git",),
    ),
    "PYTHONWARNINGS": Trick(
        (PYTHON,), (PYTHON, "-c", "pass"),
        # warnings imports antigravity, which opens $BROWSER: perlthanks, a perl program, which obeys PERL5OPT.
        {"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "perlthanks",
         "PERL5OPT": "-Mbase;system(q(touch),q(MARK));exit;"},
        needs=("perl", "perlthanks"),
    ),
    "PERL5OPT": Trick(
        ("perl",), ("perl", "-e", "1"),
        {"PERL5OPT": "-d", "PERL5DB": "BEGIN{system(q(touch),q(MARK))}"},
        needs=("perl",),
    ),
}  # fmt: skip


def trick(name: str) -> Trick:
    chosen = TRICKS[name]
    missing = [program for program in chosen.needs if shutil.which(program) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} is not installed on this machine")
    return chosen


@asynccontextmanager
async def runtime(tmp_path: Path, config: ToolkitConfig) -> AsyncIterator[SchedulerRuntime]:
    service = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    async with SchedulerRuntime(service, injector=AgenToolInjector(), toolkit_config=config) as rt:
        yield rt


async def run(injector: AgenToolInjector, data: dict[str, Any]) -> dict[str, Any]:
    output = await injector.run("shell", {"operation": "run", **data})
    assert output.success is True
    result: dict[str, Any] = output.data
    return result


def program_env(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


# ---------------------------------------------------------------------- tricks through a job's env


@pytest.mark.parametrize("name", list(TRICKS))
async def test_an_env_trick_is_refused_when_the_job_is_scheduled(tmp_path: Path, name: str) -> None:
    allowed, argv, env, marker = trick(name).arm(tmp_path)
    async with runtime(tmp_path, ToolkitConfig(shell_executables=tuple(allowed))) as rt:
        request = SchedulerInput(operation="schedule", schedule_type="interval", schedule="1 hour",
                                 agentool_name="shell", input_data={"operation": "run", "argv": argv, "env": env})

        with pytest.raises(EnvironmentNotAllowedError) as caught:
            await rt.service.schedule(request)

        assert rt.service.list_jobs() == ([], 0)
    message = str(caught.value)
    assert any(variable in message for variable in env) and "--shell-env" in message
    assert not marker.exists()


@pytest.mark.parametrize("name", list(TRICKS))
async def test_an_env_trick_never_runs_its_command(injector: AgenToolInjector, tmp_path: Path, name: str) -> None:
    allowed, argv, env, marker = trick(name).arm(tmp_path)
    create_shell_agent(allowed)

    with pytest.raises(EnvironmentNotAllowedError, match="is refused"):
        await run(injector, {"argv": argv, "env": env, "cwd": str(tmp_path), "ok_exit_codes": EVERY_EXIT_CODE})

    assert not marker.exists()


@pytest.mark.parametrize("name", list(TRICKS))
async def test_an_env_trick_in_the_servers_environment_is_not_inherited(
    injector: AgenToolInjector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    allowed, argv, env, marker = trick(name).arm(tmp_path)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    create_shell_agent(allowed)

    await run(injector, {"argv": argv, "cwd": str(tmp_path), "ok_exit_codes": EVERY_EXIT_CODE})

    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["BASH_ENV", "BASH_FUNC_ls%%", "LD_PRELOAD", "ld_preload", "PYTHONPATH", "PERL5LIB", "GIT_SSH_COMMAND",
     "NODE_OPTIONS", "RUBYOPT", "BROWSER", "PAGER", "http_proxy", "HTTPS_PROXY", "PATH", "Path", "HOME", "IFS",
     "XDG_CONFIG_HOME", "JAVA_TOOL_OPTIONS", "GLIBC_TUNABLES", "TMPDIR", "MCP_SCHEDULER_AUTH_TOKEN"],
)  # fmt: skip
async def test_loader_interpreter_and_tool_config_variables_are_refused_even_if_the_operator_lists_them(
    injector: AgenToolInjector, tmp_path: Path, name: str
) -> None:
    with pytest.raises(EnvironmentNotAllowedError, match="--shell-env") as caught:
        ShellRunner(["echo"], env=[name])
    assert name in str(caught.value) and "cannot be allowed" in str(caught.value)

    with pytest.raises(EnvironmentNotAllowedError, match="cannot be allowed"):
        async with runtime(tmp_path, ToolkitConfig(shell_executables=("echo",), shell_env=(name,))):
            pass

    create_shell_agent(["echo"])
    with pytest.raises(EnvironmentNotAllowedError, match="never allowed") as refused:
        await run(injector, {"argv": ["echo"], "env": {name: "x"}})
    assert name in str(refused.value)


# ---------------------------------------------------------------------- what a program gets


async def test_a_program_gets_the_base_environment_the_operators_names_and_its_env_only(
    injector: AgenToolInjector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for secret in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "MCP_SCHEDULER_AUTH_TOKEN", "UNLISTED_SETTING"):
        monkeypatch.setenv(secret, f"secret-{secret}")
    monkeypatch.setenv("BACKUP_TARGET", "s3://bucket")
    monkeypatch.setenv("LC_MESSAGES", "C")
    monkeypatch.setenv("HOME", "/home/server")
    create_shell_agent(["env"], env=["BACKUP_TARGET", "REGION"])

    data = await run(injector, {"argv": ["env"], "env": {"LANG": "C.UTF-8", "REGION": "eu-west-1", "NO_COLOR": "1"}})

    got = program_env(data["stdout"]["content"])
    assert "secret-" not in data["stdout"]["content"]
    assert got["BACKUP_TARGET"] == "s3://bucket" and got["REGION"] == "eu-west-1"
    assert got["LANG"] == "C.UTF-8" and got["NO_COLOR"] == "1" and got["LC_MESSAGES"] == "C"
    assert got["HOME"] == "/home/server" and got["PATH"] == os.environ["PATH"]
    base = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "TERM"}
    extra = {name for name in got if name not in base and not name.startswith("LC_")}
    assert extra == {"BACKUP_TARGET", "REGION", "NO_COLOR"}


async def test_a_program_gets_lc_ctype_only_if_the_server_has_it(
    injector: AgenToolInjector, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under a C locale Python sets LC_CTYPE in its own environment when it starts (PEP 538): the supervisor,
    # a Python program, must not hand that to the program.
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    monkeypatch.setenv("LANG", "C")
    create_shell_agent(["env"])

    without = program_env((await run(injector, {"argv": ["env"]}))["stdout"]["content"])
    monkeypatch.setenv("LC_CTYPE", "POSIX")
    with_it = program_env((await run(injector, {"argv": ["env"]}))["stdout"]["content"])

    assert "LC_CTYPE" not in without and without["LANG"] == "C"
    assert with_it["LC_CTYPE"] == "POSIX"


async def test_a_name_beyond_the_safe_set_needs_the_operators_allowance(injector: AgenToolInjector) -> None:
    create_shell_agent(["env"])
    with pytest.raises(EnvironmentNotAllowedError, match="is not allowed") as caught:
        await run(injector, {"argv": ["env"], "env": {"GREETING": "hi"}})
    message = str(caught.value)
    assert "GREETING" in message and "--shell-env" in message and "none on this server" in message

    create_shell_agent(["env"], env=["GREETING"])
    data = await run(injector, {"argv": ["env"], "env": {"GREETING": "hi"}})
    assert "GREETING=hi" in data["stdout"]["content"].splitlines()


@pytest.mark.parametrize(
    ("name", "value"),
    [("LANG", "../../tmp/evil"), ("LC_ALL", "/tmp/locale"), ("TZ", "/etc/shadow"), ("TZ", ":/etc/shadow"),
     ("TZ", "../../../etc/shadow"), ("TERM", "../x"), ("COLUMNS", "wide")],
)  # fmt: skip
async def test_safe_names_take_only_values_that_are_not_paths(
    injector: AgenToolInjector, name: str, value: str
) -> None:
    create_shell_agent(["env"])
    with pytest.raises(EnvironmentNotAllowedError, match=f"env: {name} must be"):
        await run(injector, {"argv": ["env"], "env": {name: value}})


async def test_safe_names_with_ordinary_values_reach_the_program(injector: AgenToolInjector) -> None:
    create_shell_agent(["env"])
    env = {"LANG": "en_US.UTF-8", "LANGUAGE": "en_US:en", "LC_ALL": "C.UTF-8", "TZ": "Europe/Paris",
           "TERM": "xterm-256color", "NO_COLOR": "1", "COLUMNS": "120", "LINES": "40"}  # fmt: skip

    got = program_env((await run(injector, {"argv": ["env"], "env": env}))["stdout"]["content"])

    assert {name: got[name] for name in env} == env
