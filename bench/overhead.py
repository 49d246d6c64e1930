"""Round trip of list_jobs / get_job / schedule_job vs a no-op tool on a bare `MCPServer`.

Both servers are driven through `mcp.Client`: in memory (`Client(server)`) and over stdio (a
subprocess each: `python -m mcp_scheduler --db F` and `python -m bench.bare_server`), and over
stdio by a raw JSON-RPC pipe, which times the servers alone (no client library). Calls are timed
one by one in interleaved blocks (ours and the baseline alternate) after a warm-up.
Goal (project issue): ours / no-op <= 1.5 for the median and the p99.
The size rows: characters of the answers a model reads (tools/list, list_agentools, a failed get_history, get_job)
beside their budgets (project issues 13 and 22).

`mcp.Client` validates every structured result against the tool's output schema with
`jsonschema`; the no-op's schema is one string, ours describe jobs with some twenty fields each.
The last rows time that validation alone, in process, for the same results.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ._common import (
    LOG_INPUT,
    PY,
    ROOT,
    Report,
    Row,
    StdioRpc,
    bare_argv,
    bench_main,
    child_env,
    ours_argv,
    stats,
    temp_dir,
)

NAME = "overhead"
GOAL = 1.5
JOBS_PRESENT = 10
TOOLS_LIST_BUDGET = 20_000
"""Most characters of the tools/list answer (what a model reads before its first call; project issue 13)."""


def tools_list_characters(tools: Any) -> int:
    """Characters of a tools/list answer's tools as the client holds them (by alias, without None)."""
    import json

    return len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))


async def answer_sizes(tmp: Path) -> dict[str, int]:
    """Characters of the answers a model reads most, with realistic data: list_agentools with every built-in job
    kind, get_history of an http run that could not connect, get_job of a job with a 5,700-character input value and
    runs."""
    from mcp import Client

    from mcp_scheduler import SchedulerRuntime
    from mcp_scheduler.server import build_server
    from mcp_scheduler.server.briefs import answer_size
    from mcp_scheduler.settings import Settings

    settings = Settings(database=str(tmp / "sizes.sqlite"), timezone="UTC", discover_entry_points=False)
    runtime = SchedulerRuntime(settings.service_config(), toolkit_config=settings.toolkit_config())
    long_input = {"operation": "set", "key": "weekday-note", "value": "a long note to keep " * 285}
    job = {"schedule_type": "cron", "schedule": "0 9 * * 1-5", "agentool_name": "storage_kv", "input_data": long_input,
           "job_id": "weekday-report", "job_name": "Weekday report", "timezone": "Europe/Berlin"}
    async with runtime, Client(build_server(runtime, settings)) as client:
        sizes = {"list_agentools": answer_size(_check(await client.call_tool("list_agentools", {})))}
        # A closed port on this machine: the run fails deep in the HTTP client, with its traceback in the history.
        await client.call_tool("run_now", {"job_id": "fetch", "agentool_name": "http",
                                           "input_data": {"operation": "request", "url": "http://127.0.0.1:9/"}})
        failed = _check(await client.call_tool("get_history", {"since": "1h", "status": "error"}))
        sizes["get_history"] = answer_size(failed)
        _check(await client.call_tool("schedule_job", job))
        for _ in range(3):
            _check(await client.call_tool("run_now", {"job_id": "weekday-report"}))
        sizes["get_job"] = answer_size(_check(await client.call_tool("get_job", {"job_id": "weekday-report"})))
    return sizes


def _check(result: Any) -> Any:
    if result.is_error:
        raise RuntimeError(" ".join(getattr(b, "text", "") for b in result.content))
    return result


class _RawResult:
    """The parts of a `CallToolResult` that `Ops` reads, from a raw JSON-RPC answer."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.is_error = bool(result.get("isError"))
        self.structured_content = result.get("structuredContent")
        self.content = [type("Text", (), {"text": c.get("text", "")})() for c in result.get("content", [])]


class RawClient:
    """`list_tools` and `call_tool` over a bare JSON-RPC pipe (see `StdioRpc`)."""

    def __init__(self, rpc: StdioRpc) -> None:
        self.rpc = rpc

    async def list_tools(self) -> Any:
        return await self.rpc.request("tools/list")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> _RawResult:
        return _RawResult(await self.rpc.request("tools/call", {"name": name, "arguments": arguments}))


class Ops:
    """The timed operations on one transport: the baseline no-op and our three tools."""

    def __init__(self, ours: Any, bare: Any) -> None:
        self.ours, self.bare = ours, bare
        self.counter = 0
        self.listed: list[Any] = []

    async def setup(self) -> None:
        self.listed = getattr(await self.ours.list_tools(), "tools", [])  # mcp.Client's (a raw pipe's is a dict)
        await self.bare.list_tools()
        for i in range(JOBS_PRESENT):
            _check(await self.ours.call_tool("schedule_job", self._job(f"present-{i}")))

    def _job(self, job_id: str) -> dict[str, Any]:
        return {
            "schedule_type": "interval",
            "schedule": "1 hour",
            "agentool_name": "logging",
            "input_data": LOG_INPUT,
            "job_id": job_id,
        }

    async def noop(self) -> float:
        t0 = time.perf_counter()
        _check(await self.bare.call_tool("noop", {}))
        return time.perf_counter() - t0

    async def list_jobs(self) -> float:
        t0 = time.perf_counter()
        result = _check(await self.ours.call_tool("list_jobs", {}))
        elapsed = time.perf_counter() - t0
        assert result.structured_content["total"] == JOBS_PRESENT, result.structured_content["total"]
        return elapsed

    async def get_job(self) -> float:
        job_id = f"present-{self.counter % JOBS_PRESENT}"
        self.counter += 1
        t0 = time.perf_counter()
        _check(await self.ours.call_tool("get_job", {"job_id": job_id}))
        return time.perf_counter() - t0

    async def schedule_job(self) -> float:
        job_id = f"new-{self.counter}"
        self.counter += 1
        t0 = time.perf_counter()
        _check(await self.ours.call_tool("schedule_job", self._job(job_id)))
        elapsed = time.perf_counter() - t0
        _check(await self.ours.call_tool("cancel_job", {"job_id": job_id, "confirm": True}))  # untimed: 10 jobs stay
        return elapsed


async def measure(ops: Ops, rounds: int, block: int, warmup: int) -> dict[str, list[float]]:
    funcs: dict[str, Callable[[], Awaitable[float]]] = {
        "noop": ops.noop,
        "list_jobs": ops.list_jobs,
        "get_job": ops.get_job,
        "schedule_job": ops.schedule_job,
    }
    for func in funcs.values():
        for _ in range(warmup):
            await func()
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for r in range(rounds):
        # rotate the order each round; the baseline sits between our blocks
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for _ in range(block):
                samples[name].append((await funcs[name]()) * 1000)
    return samples


@contextlib.asynccontextmanager
async def in_memory(tmp: Path) -> Any:
    from mcp import Client

    from mcp_scheduler import SchedulerRuntime
    from mcp_scheduler.server import build_server
    from mcp_scheduler.settings import Settings

    from .bare_server import mcp as bare_server

    settings = Settings(database=str(tmp / "memory.sqlite"), timezone="UTC", discover_entry_points=False)
    runtime = SchedulerRuntime(settings.service_config())
    ours_server = build_server(runtime, settings)
    async with runtime, Client(ours_server) as ours, Client(bare_server) as bare:
        yield Ops(ours, bare)


@contextlib.asynccontextmanager
async def over_stdio(tmp: Path) -> Any:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    with (tmp / "stderr.log").open("w") as errlog:
        ours_params = StdioServerParameters(
            command=PY, args=["-m", "mcp_scheduler", "--db", str(tmp / "stdio.sqlite")], cwd=ROOT, env=child_env()
        )
        bare_params = StdioServerParameters(command=PY, args=["-m", "bench.bare_server"], cwd=ROOT)
        async with (
            Client(stdio_client(ours_params, errlog=errlog)) as ours,
            Client(stdio_client(bare_params, errlog=errlog)) as bare,
        ):
            yield Ops(ours, bare)


@contextlib.asynccontextmanager
async def raw_stdio(tmp: Path) -> Any:
    ours = await StdioRpc.spawn(ours_argv(tmp / "raw.sqlite"), tmp / "stderr.log")
    bare = await StdioRpc.spawn(bare_argv(), tmp / "stderr.log")
    try:
        await ours.initialize()
        await bare.initialize()
        yield Ops(RawClient(ours), RawClient(bare))
    finally:
        await ours.close()
        await bare.close()


async def validation_cost(ops: Ops, calls: int = 300) -> dict[str, list[float]]:
    """ms the client spends validating one result of each tool (the same call `Client.call_tool` makes)."""
    results = {
        "list_jobs": await ops.ours.call_tool("list_jobs", {}),
        "get_job": await ops.ours.call_tool("get_job", {"job_id": "present-0"}),
        "schedule_job": await ops.ours.call_tool("schedule_job", ops._job("validated")),
    }
    await ops.ours.call_tool("cancel_job", {"job_id": "validated", "confirm": True})
    results["noop"] = await ops.bare.call_tool("noop", {})
    samples: dict[str, list[float]] = {}
    for name, result in results.items():
        client = ops.bare if name == "noop" else ops.ours
        samples[name] = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await client.session.validate_tool_result(name, result)
            samples[name].append((time.perf_counter() - t0) * 1000)
    return samples


def _rows(report: Report, transport: str, samples: dict[str, list[float]]) -> None:
    base = stats(samples["noop"])
    report.add(Row(f"{transport}: no-op tool (baseline) median", base["median"], "ms", "info", n=base["n"]))
    for op in ("list_jobs", "get_job", "schedule_job"):
        s = stats(samples[op])
        report.add(Row(f"{transport}: {op} median", s["median"], "ms", "ratio", base["median"], GOAL, n=s["n"]))
        report.add(Row(f"{transport}: {op} p99", s["p99"], "ms", "ratio", base["p99"], GOAL, n=s["n"]))


async def run(scale: float = 1.0) -> Report:
    from mcp_scheduler.server.briefs import AGENTOOLS_BUDGET, FAILED_HISTORY_BUDGET, GET_JOB_BUDGET

    from ._common import quiet_logging

    quiet_logging()
    report = Report(NAME, "tool round trip through mcp.Client vs a no-op tool on a bare MCPServer (ms)")
    plan = {
        "memory": (20, int(25 * scale), 30),
        "stdio": (20, int(15 * scale), 20),
        "stdio raw": (20, int(15 * scale), 20),
    }
    with temp_dir(NAME) as tmp:
        async with in_memory(tmp) as ops:
            await ops.setup()
            mem = await measure(ops, *plan["memory"])
            listed = ops.listed
            validation = await validation_cost(ops)
        async with over_stdio(tmp) as ops:
            await ops.setup()
            sio = await measure(ops, *plan["stdio"])
        async with raw_stdio(tmp) as ops:
            await ops.setup()
            raw = await measure(ops, *plan["stdio raw"])
        sizes = await answer_sizes(tmp)
    report.add(Row(f"tools/list answer, {len(listed)} tools", tools_list_characters(listed), "chars", "limit",
                   goal=TOOLS_LIST_BUDGET))
    report.add(Row("list_agentools answer, every built-in job kind", sizes["list_agentools"], "chars", "limit",
                   goal=AGENTOOLS_BUDGET))
    report.add(Row("get_history answer, one failed http run", sizes["get_history"], "chars", "limit",
                   goal=FAILED_HISTORY_BUDGET))
    report.add(Row("get_job answer, a 5,700-character input and runs", sizes["get_job"], "chars", "limit",
                   goal=GET_JOB_BUDGET))
    _rows(report, "memory", mem)
    _rows(report, "stdio", sio)
    _rows(report, "stdio raw JSON-RPC (server only)", raw)
    base = stats(validation["noop"])["median"]
    for op in ("list_jobs", "get_job", "schedule_job"):
        v = stats(validation[op])
        figure = f"client-side jsonschema validation of a {op} result"
        report.add(Row(figure, v["median"], "ms", "info", base, n=v["n"]))
    report.note(
        f"{JOBS_PRESENT} jobs present; Client mode 'auto' (2026-07-28 era); schedule_job is followed by an "
        "untimed cancel_job so the job count stays constant"
    )
    report.note(
        "blocks: "
        + ", ".join(f"{t} {r} rounds x {b} calls per op after {w} warm-up calls" for t, (r, b, w) in plan.items())
    )
    report.data = {
        "samples_ms": {"memory": mem, "stdio": sio, "stdio_raw": raw, "validation": validation},
        "stats": {
            t: {op: stats(v) for op, v in s.items()}
            for t, s in (("memory", mem), ("stdio", sio), ("stdio_raw", raw), ("validation", validation))
        },
    }
    return report


if __name__ == "__main__":
    bench_main(run, float)
