"""What paths in a `shell` job mean (issue 22 item 4): a leading `~` is the home folder of the user the server runs
as, expanded when the job runs (and said in the answer when it is scheduled); a relative path without `cwd`, a
relative `cwd` and `~name` of no user are refused when the job is scheduled, with the fix."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.shell import PathNotUsableError, ShellRunner
from mcp_scheduler import SchedulerInput, SchedulerRuntime, ServiceConfig

pytestmark = pytest.mark.skipif(shutil.which("cat") is None, reason="needs cat")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of its own for the server's user (HOME), holding notes.txt."""
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "notes.txt").write_text("buy milk\n")
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[SchedulerRuntime]:
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    toolkits = ToolkitConfig(shell_executables=("cat",))
    async with SchedulerRuntime(config, injector=AgenToolInjector(), toolkit_config=toolkits) as rt:
        yield rt


def cat(job_id: str, *arguments: str, **fields: object) -> SchedulerInput:
    return SchedulerInput(
        operation="schedule", job_id=job_id, schedule_type="interval", schedule="1 hour", agentool_name="shell",
        input_data={"operation": "run", "argv": ["cat", *arguments], **fields},
    )


async def test_a_home_path_is_kept_as_written_said_in_the_answer_and_read_in_the_home_folder_when_it_runs(
    runtime: SchedulerRuntime, home: Path
) -> None:
    job = await runtime.service.schedule(cat("notes", "~/notes.txt"))

    (warning,) = job.warnings
    assert f"argv[1] '~/notes.txt' as '{home / 'notes.txt'}'" in warning
    assert "home folder of the user the server runs as" in warning
    assert job.input_data["argv"] == ["cat", "~/notes.txt"]
    record = await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="notes"))
    assert record.status == "success"
    assert record.result["data"]["stdout"]["content"] == "buy milk\n"
    assert record.result["data"]["argv"] == ["cat", str(home / "notes.txt")]


async def test_a_relative_path_without_cwd_is_refused_with_an_absolute_one_to_use(
    runtime: SchedulerRuntime, home: Path
) -> None:
    with pytest.raises(PathNotUsableError) as caught:
        await runtime.service.schedule(cat("relative", "./notes.txt"))

    message = str(caught.value)
    assert "argv[1] './notes.txt' is a relative path" in message
    assert f"such as '{home / 'notes.txt'}'" in message and "or set cwd" in message
    assert runtime.service.list_jobs() == ([], 0)


async def test_a_relative_path_with_cwd_is_read_in_cwd(runtime: SchedulerRuntime, home: Path) -> None:
    job = await runtime.service.schedule(cat("in-home", "./notes.txt", cwd="~"))

    assert job.warnings == [f"Paths starting with '~' are read in the home folder of the user the server runs as, "
                            f"when the job runs: cwd '~' as '{home}'."]
    record = await runtime.service.run_now(SchedulerInput(operation="run_now", job_id="in-home"))
    assert record.result["data"]["stdout"]["content"] == "buy milk\n"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"cwd": "data"}, "cwd 'data' is a relative path"),
        ({"argv": ["cat", "~no-such-user-22/notes.txt"]}, "'~no-such-user-22' is no user of the server"),
    ],
)
async def test_paths_that_cannot_mean_what_they_say_are_refused_when_checked(
    home: Path, fields: dict[str, object], problem: str
) -> None:
    runner = ShellRunner(["cat"])
    injector = AgenToolInjector()
    injector.register(runner.agentool())

    with pytest.raises(PathNotUsableError, match=problem):
        await injector.check("shell", {"operation": "run", "argv": ["cat", "/etc/hostname"], **fields})


async def test_other_arguments_give_no_warning(home: Path) -> None:
    injector = AgenToolInjector()
    injector.register(ShellRunner(["cat"]).agentool())

    assert await injector.check("shell", {"operation": "run", "argv": ["cat", "--", "a/b", "HEAD~1"]}) == []


async def test_a_secret_home_path_is_not_spelt_out_in_the_answer(tmp_path: Path, home: Path) -> None:
    config = ServiceConfig(database=str(tmp_path / "secret.sqlite"), timezone="UTC",
                           environ={"NOTES_PATH": "~/notes.txt"}, secrets=("NOTES_PATH",))
    toolkits = ToolkitConfig(shell_executables=("cat",))
    async with SchedulerRuntime(config, injector=AgenToolInjector(), toolkit_config=toolkits) as rt:
        job = await rt.service.schedule(cat("secret", "!env:NOTES_PATH"))

    (warning,) = job.warnings
    assert "argv[1] (a secret) in that folder" in warning
    assert "notes.txt" not in warning
