"""What the `shell` supervisor costs per run (Linux): `ShellRunner.run(["true"])` supervised vs in a process group.

Supervised (the default on Linux), a run starts `python -I -S shell/_supervisor.py`, which starts the
program; the baseline starts the program directly in a process group of its own (the behaviour
elsewhere). Both go through the same `ShellRunner.run` (environment, output capture, stop), in
alternating blocks after a warm-up. No goal: reported (the README of docs/kinds/shell.md quotes it).
"""

from __future__ import annotations

import sys
import time

from ._common import Report, Row, bench_main, quiet_logging, stats

NAME = "shell_supervisor"


async def run(runs_per_variant: int = 200, block: int = 20) -> Report:
    quiet_logging()
    from agentool_bridge.toolkits.shell import ShellRunner

    report = Report(NAME, "milliseconds per shell run of `true`: under the supervisor vs in a process group")
    if not sys.platform.startswith("linux"):
        report.note("the supervisor runs on Linux only: nothing to measure here")
        return report
    runners = {"supervised": ShellRunner(["true"], supervise=True), "group": ShellRunner(["true"], supervise=False)}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for runner in runners.values():  # warm-up
        for _ in range(10):
            await runner.run(["true"])
    for index in range(max(1, runs_per_variant // block)):
        names = list(runners) if index % 2 == 0 else list(reversed(runners))
        for name in names:
            for _ in range(block):
                started = time.perf_counter()
                await runners[name].run(["true"])
                samples[name].append((time.perf_counter() - started) * 1000)
    ours, base = stats(samples["supervised"]), stats(samples["group"])
    report.add(Row("run of `true`, supervised (median)", ours["median"], "ms", "info", base["median"],
                   n=ours["n"]))  # fmt: skip
    report.add(Row("run of `true`, supervised (p90)", ours["p90"], "ms", "info", base["p90"], n=ours["n"]))
    report.add(Row("supervisor start-up cost per run (median)", ours["median"] - base["median"], "ms"))
    report.note("baseline: the same ShellRunner.run with supervise=False (the program in a process group of its own)")
    report.data = {"supervised_ms": ours, "group_ms": base}
    return report


if __name__ == "__main__":
    bench_main(run, int)
