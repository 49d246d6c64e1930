"""What a server loads before its first answers: the cold start a client waits for (`make bench`'s coldstart)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LATER = ("croniter", "cron_descriptor", "dateutil", "pydantic_ai", "rich")
"""Loaded when a cron schedule (croniter, cron-descriptor and the dateutil they use) or an agent is first used;
rich (where installed) never, once logging is configured: the SDK's handler would be dropped."""

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.metadata, json, logging, sys
    logging.basicConfig(stream=sys.stderr)  # as the command does before it builds the server

    # Every scan of all installed packages' entry points made for a library's plugins (APScheduler's aliases).
    scans = []
    scan_all = importlib.metadata.entry_points
    def counting(**params):
        scans.append(params.get("group"))
        return scan_all(**params)
    importlib.metadata.entry_points = counting

    from mcp_scheduler.audit import AuditEntry
    from mcp_scheduler.jobs import JobDefinition
    from mcp_scheduler.models import JobInfo, SchedulerInput
    from mcp_scheduler.schedules import CronSchedule, IntervalSchedule, OnceSchedule
    from mcp_scheduler.runtime import SchedulerRuntime
    from mcp_scheduler.scheduler import ServiceConfig
    from mcp_scheduler.server import build_server
    from agentool_bridge.toolkits.http.inputs import HttpInput
    from agentool_bridge.toolkits.inbox import InboxMessage
    from agentool_bridge.toolkits.mcp.servers import MCPServerSpec, ServersFile
    from agentool_bridge.toolkits._common import ToolkitOutput
    from mcp_scheduler.models import BackgroundRunner, SchedulerOutput, SchedulerStatus

    # Models no first answer needs: built when the first job is made or loaded.
    MODELS = (JobDefinition, JobInfo, AuditEntry, CronSchedule, IntervalSchedule, OnceSchedule)
    # Nor these: answers of AgenTools and of status, the inbox's messages, the servers file.
    LATER_MODELS = (SchedulerOutput, ToolkitOutput, InboxMessage, MCPServerSpec, ServersFile, SchedulerStatus,
                    BackgroundRunner)

    async def main(database, later):
        async with SchedulerRuntime(ServiceConfig(database=database)) as runtime:
            server = build_server(runtime)
            tools = await server.list_tools()
            report = {"tools": len(tools), "loaded": sorted(m for m in later if m in sys.modules),
                      "http_input_built": HttpInput.__pydantic_complete__,
                      "models_built": sorted(m.__name__ for m in MODELS + LATER_MODELS if m.__pydantic_complete__),
                      "plugin_scans": sorted(g for g in scans if str(g).startswith("apscheduler."))}
            preview = runtime.service.preview("cron", "0 9 * * 1-5", None, 1, None)
            report["preview"] = preview.description
            report["loaded_after_cron"] = sorted(m for m in later if m in sys.modules)
            report["http_schema"] = "url" in HttpInput.model_json_schema()["properties"]
            job = await runtime.service.schedule(SchedulerInput(
                operation="schedule", job_name="later", schedule_type="interval", schedule="1h",
                agentool_name="logging", input_data={"operation": "log", "level": "INFO", "message": "hi"}))
            report["scheduled"] = job.schedule_type
            report["models_built_after_job"] = sorted(m.__name__ for m in MODELS if m.__pydantic_complete__)
        print(json.dumps(report))

    asyncio.run(main(sys.argv[1], sys.argv[2:]))
    """
)


def test_a_server_answers_tools_list_before_loading_cron_libraries_or_building_agentool_inputs(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "jobs.db"), *LATER],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["tools"] == 19
    assert report["loaded"] == [], "loaded before the first answers: " + ", ".join(report["loaded"])
    assert report["http_input_built"] is False  # an AgenTool's input model is built when first used
    assert report["models_built"] == [], "models built before the first answers: " + ", ".join(report["models_built"])
    # APScheduler's import reads its own entry points only (all installed packages' three times cost 1.5% of a start)
    assert report["plugin_scans"] == []
    assert "09:00" in report["preview"] and "Monday through Friday" in report["preview"]  # croniter, cron-descriptor
    assert report["loaded_after_cron"] == ["cron_descriptor", "croniter", "dateutil"]
    assert report["http_schema"] is True
    assert report["scheduled"] == "interval"
    assert set(report["models_built_after_job"]) >= {"JobDefinition", "JobInfo", "IntervalSchedule"}
