"""The `logging` AgenTool, driven through the injector: stderr by default, log files only in the operator's log
directory (plain names, no links, 0600, rotated), and nothing else on the host written, created or read."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits import (
    LogFileNotAllowedError,
    LogFileNotConfiguredError,
    LogSink,
    ToolkitConfig,
    ToolkitOutput,
    create_logging_agent,
)
from agentool_bridge.toolkits.logs import LoggingInput
from mcp_scheduler import SchedulerError, SchedulerInput, SchedulerRuntime, ServiceConfig


async def run(injector: AgenToolInjector, operation: str, **fields: Any) -> ToolkitOutput:
    return await injector.run("logging", {"operation": operation, **fields})


async def write_sample(injector: AgenToolInjector) -> list[ToolkitOutput]:
    return [
        await run(injector, "log", level="DEBUG", message="too quiet"),
        await run(injector, "log", level="INFO", message="started"),
        await run(injector, "log", level="WARNING", message="disk low", data={"free_gb": 2}),
        await run(injector, "log", level="ERROR", message="db down", logger_name="app.db"),
        await run(injector, "log", level="critical", message="line one\nline two", logger_name="app"),
    ]


async def test_json_file_logging_reads_back_with_filters(
    injector: AgenToolInjector, tmp_path: Path, capsys: Any
) -> None:
    create_logging_agent(log_dir=tmp_path / "logs")
    path = tmp_path / "logs" / "agent.jsonl"
    configured = await injector.run(
        "logging",
        json.dumps({"operation": "configure", "output": "file", "file_path": "agent.jsonl", "format": "json"}),
    )
    assert configured.data == {"output": "file", "file_path": "agent.jsonl", "format": "json", "level": "INFO"}

    outs = await write_sample(injector)
    assert [o.data["logged"] for o in outs] == [False, True, True, True, True]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    assert json.loads(lines[1]) | {"timestamp": None} == {
        "timestamp": None,
        "level": "WARNING",
        "logger": "agentool",
        "message": "disk low",
        "data": {"free_gb": 2},
    }

    logs = await run(injector, "get_logs", level="WARNING")
    entries = logs.data["entries"]
    assert [e["message"] for e in entries] == ["disk low", "db down", "line one\nline two"]
    assert entries[0]["data"] == {"free_gb": 2} and entries[1]["logger"] == "app.db"
    assert logs.data["count"] == 3 and logs.data["file_path"] == "agent.jsonl"

    app = await run(injector, "get_logs", logger_name="app")
    assert [e["message"] for e in app.data["entries"]] == ["db down", "line one\nline two"]
    last = await run(injector, "get_logs", limit=1)
    assert [e["level"] for e in last.data["entries"]] == ["CRITICAL"]

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


async def test_text_file_logging_reads_back_with_filters(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent(log_dir=tmp_path)
    path = tmp_path / "agent.log"
    await injector.run(
        "logging",
        LoggingInput(operation="configure", output="file", file_path="agent.log", format="text", level="DEBUG"),
    )
    outs = await write_sample(injector)
    assert all(o.data["logged"] for o in outs)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5  # one line per record, newlines in messages escaped
    assert " WARNING [agentool] disk low | data=" in lines[2]

    logs = await run(injector, "get_logs", file_path="agent.log", level="error")
    entries = logs.data["entries"]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("ERROR", "app.db", "db down"),
        ("CRITICAL", "app", "line one\nline two"),
    ]
    every = await run(injector, "get_logs")
    assert [e["message"] for e in every.data["entries"]][:3] == ["too quiet", "started", "disk low"]
    assert every.data["entries"][2]["data"] == {"free_gb": 2}
    assert every.data["entries"][2]["timestamp"].endswith("+00:00")


async def test_both_outputs_write_to_stderr_and_the_file_never_stdout(
    injector: AgenToolInjector, tmp_path: Path, capsys: Any
) -> None:
    create_logging_agent(log_dir=tmp_path)
    path = tmp_path / "both.log"
    await run(injector, "configure", output="both", file_path="both.log", level="WARNING")
    out = await run(injector, "log", level="ERROR", message="visible")
    assert out.data["outputs"] == ["file", "stderr"]
    await run(injector, "log", level="INFO", message="below the level")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "ERROR [agentool] visible" in captured.err and "below the level" not in captured.err
    assert "visible" in path.read_text(encoding="utf-8")


async def test_default_output_is_stderr_text(injector: AgenToolInjector, capsys: Any) -> None:
    create_logging_agent()
    out = await run(injector, "log", message="hello", data={"a": 1})
    assert out.data == {"level": "INFO", "logger_name": "agentool", "logged": True, "outputs": ["stderr"]}
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.rstrip("\n").endswith(' INFO [agentool] hello | data={"a": 1}')


async def test_get_logs_without_a_configured_file_is_a_clear_error(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent(log_dir=tmp_path)
    with pytest.raises(LogFileNotConfiguredError, match="configure output 'file' or 'both'"):
        await run(injector, "get_logs")


async def test_get_logs_of_a_missing_file(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent(log_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="'nope.log' does not exist in the log directory"):
        await run(injector, "get_logs", file_path="nope.log")


async def test_get_logs_skips_lines_that_are_not_log_records(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent(log_dir=tmp_path)
    path = tmp_path / "mixed.log"
    path.write_text(
        'root:x:0:0:root:/root:/bin/bash\n{"not": "a record"}\n2024-01-01T00:00:00.000+00:00 INFO [agentool] real\n',
        encoding="utf-8",
    )
    logs = await run(injector, "get_logs", file_path="mixed.log")
    assert [e["message"] for e in logs.data["entries"]] == ["real"]


async def test_recreating_the_factory_closes_the_old_file(injector: AgenToolInjector, tmp_path: Path) -> None:
    old = create_logging_agent(log_dir=tmp_path)
    path = tmp_path / "old.log"
    await run(injector, "configure", output="file", file_path="old.log")
    await run(injector, "log", message="before")
    create_logging_agent(log_dir=tmp_path)
    await run(injector, "log", message="after")  # goes to stderr now
    late = old.tool("log")(level="INFO", message="late", data=None, logger_name="agentool")
    assert late.data["logged"] is False  # the old sink's handlers are closed
    assert path.read_text(encoding="utf-8").count("\n") == 1
    with pytest.raises(LogFileNotConfiguredError):
        await run(injector, "get_logs")


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"operation": "log"}, "message", "message is required for operation 'log'"),
        ({"operation": "log", "message": "m", "level": "LOUD"}, "level", "Input should be"),
        ({"operation": "log", "message": "m", "logger_name": ""}, "logger_name", "must not be empty"),
        ({"operation": "log", "message": "m", "logger_name": "has space"}, "logger_name", "may only contain"),
        ({"operation": "log", "message": "m", "logger_name": "a" * 201}, "logger_name", "at most 200"),
        ({"operation": "configure", "output": "file"}, "file_path", "file_path is required"),
        ({"operation": "configure", "output": "both"}, "file_path", "file_path is required"),
        ({"operation": "configure", "file_path": "x.log"}, "file_path", "only used with output"),
        ({"operation": "configure", "output": "stdout"}, "output", "Input should be"),
        ({"operation": "log", "message": "m", "colour": "red"}, "colour", "Extra inputs"),
        ({"operation": "configure", "output": "file", "file_path": "/etc/passwd"}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": "~/.bashrc"}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": ".bashrc"}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": "../x.log"}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": ".."}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": "a/b.log"}, "file_path", "plain file name"),
        ({"operation": "configure", "output": "file", "file_path": "a b.log"}, "file_path", "plain file name"),
        ({"operation": "get_logs", "file_path": "/var/log/syslog"}, "file_path", "plain file name"),
        ({"operation": "get_logs", "file_path": "x" * 256}, "file_path", "at most 255"),
    ],
)
async def test_invalid_inputs_name_the_field(
    injector: AgenToolInjector, fields: dict[str, Any], field: str, fragment: str
) -> None:
    create_logging_agent()
    with pytest.raises(AgenToolInputError, match=fragment) as info:
        await injector.run("logging", fields)
    assert info.value.fields == [field]


# ---------------------------------------------------------------------- the host outside the log directory


@asynccontextmanager
async def runtime(tmp_path: Path, config: ToolkitConfig | None = None) -> AsyncIterator[SchedulerRuntime]:
    service = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    async with SchedulerRuntime(service, injector=AgenToolInjector(), toolkit_config=config) as rt:
        yield rt


async def run_now(rt: SchedulerRuntime, input_data: dict[str, Any]) -> Any:
    request = SchedulerInput(operation="run_now", agentool_name="logging", input_data=input_data)
    return (await rt.service.run_now(request)).result


async def test_with_default_settings_a_job_cannot_append_to_a_file_of_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    refusals = []
    async with runtime(tmp_path) as rt:
        for file_path in ("~/.bashrc", str(home / ".bashrc"), "bashrc"):
            try:
                await run_now(rt, {"operation": "configure", "output": "file", "file_path": file_path})
            except (SchedulerError, LogFileNotAllowedError) as exc:
                refusals.append(str(exc))
            await run_now(rt, {"operation": "log", "message": "; id > /tmp/pwn #"})

    assert os.listdir(home) == []
    assert len(refusals) == 3 and all("--log-dir" in refusal for refusal in refusals)


async def test_without_a_log_dir_file_output_and_get_logs_are_refused_when_scheduled(tmp_path: Path) -> None:
    async with runtime(tmp_path) as rt:
        for input_data in ({"operation": "configure", "output": "both", "file_path": "agent.log"},
                           {"operation": "get_logs"}):  # fmt: skip
            request = SchedulerInput(operation="schedule", schedule_type="interval", schedule="1 hour",
                                     agentool_name="logging", input_data=input_data)
            with pytest.raises(LogFileNotAllowedError, match="start the server with --log-dir DIR"):
                await rt.service.schedule(request)
        assert rt.service.list_jobs() == ([], 0)

        stderr_only = SchedulerInput(operation="schedule", schedule_type="interval", schedule="1 hour",
                                     agentool_name="logging", input_data={"operation": "log", "message": "tick"})
        await rt.service.schedule(stderr_only)
        assert rt.service.list_jobs()[1] == 1


async def test_the_operators_log_dir_is_the_runtimes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    async with runtime(tmp_path, ToolkitConfig(log_dir=str(logs))) as rt:
        await run_now(rt, {"operation": "configure", "output": "file", "file_path": "jobs.log"})
        await run_now(rt, {"operation": "log", "message": "tick"})
        result = await run_now(rt, {"operation": "get_logs"})

    assert [e["message"] for e in result["data"]["entries"]] == ["tick"]
    assert "tick" in (logs / "jobs.log").read_text()


async def test_configure_creates_no_directory_but_the_log_dir(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent()
    with pytest.raises((LogFileNotAllowedError, AgenToolInputError), match="--log-dir"):
        await run(injector, "configure", output="file", file_path=str(tmp_path / "a" / "b" / "c.log"))
    assert not (tmp_path / "a").exists()

    logs = tmp_path / "var" / "logs"
    create_logging_agent(log_dir=logs)
    await run(injector, "configure", output="file", file_path="c.log")
    await run(injector, "log", message="hello")

    assert os.listdir(tmp_path) == ["var"]
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert stat.S_IMODE((logs / "c.log").stat().st_mode) == 0o600
    assert "hello" in (logs / "c.log").read_text()


@pytest.mark.parametrize("log_dir", [False, True], ids=["no log dir", "log dir"])
async def test_get_logs_reads_nothing_outside_the_log_dir_and_tells_nothing_of_it(
    injector: AgenToolInjector, tmp_path: Path, log_dir: bool
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("2024-01-01T00:00:00Z INFO [app] top secret\n")
    (tmp_path / "logs").mkdir()
    create_logging_agent(log_dir=tmp_path / "logs" if log_dir else None)

    refusals = []
    for path in (outside, tmp_path / "missing.txt", Path("/etc/passwd"), Path("/nonexistent/x")):
        with pytest.raises((LogFileNotAllowedError, AgenToolInputError)) as caught:
            await run(injector, "get_logs", file_path=str(path))
        refusals.append((type(caught.value), str(caught.value).replace(repr(str(path)), "PATH")))

    assert len(set(refusals)) == 1  # the same answer whether the file exists or not
    assert "top secret" not in refusals[0][1]


async def test_a_symbolic_link_in_the_log_dir_is_never_followed(injector: AgenToolInjector, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    outside = tmp_path / "outside.log"
    outside.write_text("2024-01-01T00:00:00Z INFO [app] outside\n")
    (logs / "link.log").symlink_to(outside)
    create_logging_agent(log_dir=logs)

    with pytest.raises(LogFileNotAllowedError, match="symbolic link"):
        await run(injector, "configure", output="file", file_path="link.log")
    await run(injector, "log", message="written")
    with pytest.raises(LogFileNotAllowedError, match="symbolic link"):
        await run(injector, "get_logs", file_path="link.log")

    assert outside.read_text() == "2024-01-01T00:00:00Z INFO [app] outside\n"


async def test_a_fifo_in_the_log_dir_is_refused_without_blocking(injector: AgenToolInjector, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.log")
    create_logging_agent(log_dir=tmp_path)

    with pytest.raises(LogFileNotAllowedError, match="not a regular file"):
        await run(injector, "configure", output="file", file_path="pipe.log")
    with pytest.raises(LogFileNotAllowedError, match="not a regular file"):
        await run(injector, "get_logs", file_path="pipe.log")


async def test_a_log_file_is_rotated_at_its_size_cap_keeping_one_older_copy(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    injector.registry.register(LogSink(tmp_path, max_bytes=2000).agentool())
    await run(injector, "configure", output="file", file_path="big.log")

    for number in range(200):
        await run(injector, "log", message=f"record {number:03d} " + "x" * 40)

    assert sorted(os.listdir(tmp_path)) == ["big.log", "big.log.1"]
    assert (tmp_path / "big.log").stat().st_size <= 2000 and (tmp_path / "big.log.1").stat().st_size <= 2000
    messages = [e["message"][:10] for e in (await run(injector, "get_logs", limit=10_000)).data["entries"]]
    count = len(messages)
    assert count > len((tmp_path / "big.log").read_text().splitlines())  # the rotated copy is read too
    assert messages == [f"record {n:03d}" for n in range(200 - count, 200)]


async def test_jobs_create_at_most_max_files_log_files(injector: AgenToolInjector, tmp_path: Path) -> None:
    injector.registry.register(LogSink(tmp_path, max_files=2).agentool())
    await run(injector, "configure", output="file", file_path="a.log")
    await run(injector, "configure", output="file", file_path="b.log")

    with pytest.raises(LogFileNotAllowedError, match="holds 2 log files, the most jobs may create"):
        await run(injector, "configure", output="file", file_path="c.log")
    with pytest.raises(LogFileNotAllowedError, match="rotated copies"):
        await run(injector, "configure", output="file", file_path="a.log.1")
    await run(injector, "configure", output="both", file_path="a.log")

    assert sorted(os.listdir(tmp_path)) == ["a.log", "b.log"]
