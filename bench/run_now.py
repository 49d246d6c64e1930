"""Throughput of a trivial AgenTool run through the scheduler's AgenTool face (no goal: reported).

Three ways to run the same `noop` tool function, in alternating timed blocks:
  direct      `await noop(operation='noop', value=i)` (the tool function itself);
  injector    `await injector.run('noop', {...})` (validation, routing, output coercion);
  run_now     `await injector.run('scheduler', {'operation': 'run_now', 'agentool_name': 'noop',
              'input_data': {...}})` with `create_scheduler_agent(None)` (in-memory SQLite history, events).
The injector is the benchmark's own, activated while the seed's `create_scheduler_agent` makes its scheduler.
The ratio is how many times slower than the direct call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._common import Report, Row, bench_main, quiet_logging, register_noop, stats

NAME = "run_now"


async def run(seconds_per_variant: float = 4.0, block_s: float = 0.25) -> Report:
    quiet_logging()
    from agentool_bridge import AgenToolInjector
    from mcp_scheduler import close_scheduler_agent, create_scheduler_agent

    report = Report(NAME, "runs/s of a trivial AgenTool: direct call vs injector vs the scheduler's run_now")
    injector = AgenToolInjector()
    noop = register_noop(with_agent=True, registry=injector.registry)
    with injector.activate():
        create_scheduler_agent(None)
    counter = [0]

    async def direct() -> Any:
        counter[0] += 1
        return await noop(operation="noop", value=counter[0])

    async def via_injector() -> Any:
        counter[0] += 1
        return await injector.run("noop", {"operation": "noop", "value": counter[0]})

    async def via_run_now() -> Any:
        counter[0] += 1
        out = await injector.run(
            "scheduler",
            {"operation": "run_now", "agentool_name": "noop", "input_data": {"operation": "noop", "value": counter[0]}},
        )
        assert out.success and out.data["result"] == {"value": counter[0]}, out
        return out

    variants: dict[str, Callable[[], Awaitable[Any]]] = {
        "direct": direct,
        "injector": via_injector,
        "run_now": via_run_now,
    }
    for func in variants.values():  # warm-up (opens the service on the first run_now)
        for _ in range(200):
            await func()
    calls = dict.fromkeys(variants, 0)
    spent = dict.fromkeys(variants, 0.0)
    latency: dict[str, list[float]] = {name: [] for name in variants}
    rounds = max(1, round(seconds_per_variant / block_s))
    names = list(variants)
    for r in range(rounds):
        for name in names[r % 3 :] + names[: r % 3]:
            func = variants[name]
            t0 = time.perf_counter()
            end = t0 + block_s
            n = 0
            while True:
                t = time.perf_counter()
                await func()
                now = time.perf_counter()
                if n % 16 == 0:
                    latency[name].append((now - t) * 1e6)
                n += 1
                if now >= end:
                    break
            calls[name] += n
            spent[name] += time.perf_counter() - t0
    rate = {name: calls[name] / spent[name] for name in variants}
    with injector.activate():
        await close_scheduler_agent()
    injector.clear()
    report.add(Row("direct call of the tool function", rate["direct"], "runs/s", n=calls["direct"]))
    report.add(
        Row(
            "injector.run('noop')",
            rate["injector"],
            "runs/s",
            "info",
            rate["direct"],
            higher_is_better=True,
            n=calls["injector"],
        )
    )
    report.add(
        Row(
            "injector.run('scheduler', run_now)",
            rate["run_now"],
            "runs/s",
            "info",
            rate["direct"],
            higher_is_better=True,
            n=calls["run_now"],
        )
    )
    report.add(
        Row(
            "  run_now vs injector.run('noop')",
            rate["run_now"],
            "runs/s",
            "info",
            rate["injector"],
            higher_is_better=True,
        )
    )
    med = {name: stats(v)["median"] for name, v in latency.items()}
    report.note(
        "ratio = baseline runs/s / runs/s (times slower); median latency "
        + ", ".join(f"{k} {v:.1f} us" for k, v in med.items())
    )
    report.note(
        f"{rounds} alternating blocks of {block_s} s per variant; run_now keeps a history record per run "
        f"(in-memory SQLite, batched writes)"
    )
    report.data = {"rate": rate, "calls": calls, "latency_us": {k: stats(v) for k, v in latency.items()}}
    return report


if __name__ == "__main__":
    bench_main(run, float)
