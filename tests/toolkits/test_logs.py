"""The `logging` AgenTool, driven through the injector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits import LogFileNotConfiguredError, ToolkitOutput, create_logging_agent
from agentool_bridge.toolkits.logs import LoggingInput


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
    create_logging_agent()
    path = tmp_path / "logs" / "agent.jsonl"
    configured = await injector.run(
        "logging",
        json.dumps({"operation": "configure", "output": "file", "file_path": str(path), "format": "json"}),
    )
    assert configured.data == {"output": "file", "file_path": str(path), "format": "json", "level": "INFO"}

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
    assert logs.data["count"] == 3 and logs.data["file_path"] == str(path)

    app = await run(injector, "get_logs", logger_name="app")
    assert [e["message"] for e in app.data["entries"]] == ["db down", "line one\nline two"]
    last = await run(injector, "get_logs", limit=1)
    assert [e["level"] for e in last.data["entries"]] == ["CRITICAL"]

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


async def test_text_file_logging_reads_back_with_filters(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent()
    path = tmp_path / "agent.log"
    await injector.run(
        "logging",
        LoggingInput(operation="configure", output="file", file_path=str(path), format="text", level="DEBUG"),
    )
    outs = await write_sample(injector)
    assert all(o.data["logged"] for o in outs)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5  # one line per record, newlines in messages escaped
    assert " WARNING [agentool] disk low | data=" in lines[2]

    logs = await run(injector, "get_logs", file_path=str(path), level="error")
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
    create_logging_agent()
    path = tmp_path / "both.log"
    await run(injector, "configure", output="both", file_path=str(path), level="WARNING")
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


async def test_get_logs_without_a_configured_file_is_a_clear_error(injector: AgenToolInjector) -> None:
    create_logging_agent()
    with pytest.raises(LogFileNotConfiguredError, match="configure output 'file' or 'both'"):
        await run(injector, "get_logs")


async def test_get_logs_of_a_missing_file(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await run(injector, "get_logs", file_path=str(tmp_path / "nope.log"))


async def test_get_logs_skips_lines_that_are_not_log_records(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_logging_agent()
    path = tmp_path / "mixed.log"
    path.write_text(
        'root:x:0:0:root:/root:/bin/bash\n{"not": "a record"}\n2024-01-01T00:00:00.000+00:00 INFO [agentool] real\n',
        encoding="utf-8",
    )
    logs = await run(injector, "get_logs", file_path=str(path))
    assert [e["message"] for e in logs.data["entries"]] == ["real"]


async def test_recreating_the_factory_closes_the_old_file(injector: AgenToolInjector, tmp_path: Path) -> None:
    old = create_logging_agent()
    path = tmp_path / "old.log"
    await run(injector, "configure", output="file", file_path=str(path))
    await run(injector, "log", message="before")
    create_logging_agent()
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
    ],
)
async def test_invalid_inputs_name_the_field(
    injector: AgenToolInjector, fields: dict[str, Any], field: str, fragment: str
) -> None:
    create_logging_agent()
    with pytest.raises(AgenToolInputError, match=fragment) as info:
        await injector.run("logging", fields)
    assert info.value.fields == [field]
