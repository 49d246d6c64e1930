"""Cold start: spawn -> first `tools/list` answer over stdio, ours vs a bare `MCPServer`, alternating.

Goal (project issue): median ratio <= 1.2. The client is a raw JSON-RPC pipe (initialize,
notifications/initialized, tools/list), so client-side imports are not in the figure.

The project's packages are byte-compiled first (`compileall`, as pip does when it installs a wheel): a machine
with PYTHONDONTWRITEBYTECODE set never writes the `.pyc` files of a source checkout, so every start would
otherwise compile the project's modules from source while the SDK's come compiled.
"""

from __future__ import annotations

import compileall
import time
from pathlib import Path

from ._common import ROOT, Report, Row, StdioRpc, bare_argv, bench_main, ours_argv, stats, temp_dir

NAME = "coldstart"
GOAL = 1.2


async def spawn_to_tools_list(argv: list[str], errlog: Path) -> tuple[float, float, int]:
    """(ms to initialize answer, ms to tools/list answer, number of tools)."""
    t0 = time.perf_counter()
    rpc = await StdioRpc.spawn(argv, errlog)
    try:
        await rpc.initialize()
        t_init = time.perf_counter()
        tools = await rpc.request("tools/list")
        t_list = time.perf_counter()
    finally:
        await rpc.close()
    return (t_init - t0) * 1000, (t_list - t0) * 1000, len(tools["tools"])


PACKAGES = ("mcp_scheduler", "agentool_bridge", "bench")
"""Byte-compiled before the runs, as an installed wheel is (`bench` holds the baseline's server)."""


def compile_packages() -> bool:
    """Write the `.pyc` files of the project's packages (what `pip install` does); True if all compiled."""
    return all(compileall.compile_dir(ROOT / name, quiet=1) for name in PACKAGES)


async def run(runs: int = 12) -> Report:
    report = Report(NAME, "spawn -> first tools/list answer over stdio (ms)")
    compiled = compile_packages()
    with temp_dir(NAME) as tmp:
        db = tmp / "cold.sqlite"
        errlog = tmp / "stderr.log"
        variants = {"ours": ours_argv(db), "bare": bare_argv()}
        samples: dict[str, list[float]] = {"ours": [], "bare": []}
        init: dict[str, list[float]] = {"ours": [], "bare": []}
        tools: dict[str, int] = {}
        for name, argv in variants.items():  # warm-up: page cache, .pyc files, the database file
            _, _, tools[name] = await spawn_to_tools_list(argv, errlog)
        for i in range(runs):
            order = ["ours", "bare"] if i % 2 == 0 else ["bare", "ours"]  # ABBA against drift
            for name in order:
                t_init, t_list, _ = await spawn_to_tools_list(variants[name], errlog)
                init[name].append(t_init)
                samples[name].append(t_list)
    ours, bare = stats(samples["ours"]), stats(samples["bare"])
    report.add(Row("cold start median", ours["median"], "ms", "ratio", bare["median"], GOAL, n=runs))
    report.add(Row("cold start p90", ours["p90"], "ms", "ratio", bare["p90"], GOAL, n=runs))
    report.add(
        Row(
            "  (to initialize answer, median)",
            stats(init["ours"])["median"],
            "ms",
            "info",
            stats(init["bare"])["median"],
            n=runs,
        )
    )
    report.note(f"{runs} alternating runs each after 1 warm-up; ours lists {tools['ours']} tools, bare {tools['bare']}")
    report.note(
        f"packages byte-compiled first, as an installed wheel is ({', '.join(PACKAGES)}): "
        f"{'done' if compiled else 'FAILED: ours compiles from source'}"
    )
    report.data = {"samples_ms": samples, "initialize_ms": init, "stats": {"ours": ours, "bare": bare}}
    return report


if __name__ == "__main__":
    bench_main(run, int)
