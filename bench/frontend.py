"""The thin front-end: spawn -> first `tools/list` answer over stdio while the store's background runner is alive
(the front-end pipes its client to the runner's socket), against a bare `MCPServer` in the same run; and the
front-end's memory.

Goals (issue 19, item 6): median cold start ratio <= 0.2; memory of a front-end: a few MB. Context rows: the
first front-end of a store, which starts the runner itself and pipes to it once it listens, and the bare
server's memory. The client is a raw JSON-RPC pipe (`StdioRpc`), as in `coldstart`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._common import PY, ROOT, Report, Row, StdioRpc, bare_argv, bench_main, child_env, rss_mb, stats, temp_dir

NAME = "frontend"
GOAL = 0.2
MEMORY_GOAL_MB = 10.0
"""'A few MB': the private memory (USS) of one front-end process (a bare Python interpreter is about 4 MB)."""


def private_mb(pid: int) -> float:
    """Memory that only this process holds (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup), in MB: what
    one more front-end costs, shared libraries and the interpreter's mapped files left out."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(int(kb) for kb in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+)", text, re.M)) / 1024


@contextmanager
def user_machine(tmp: Path) -> Iterator[dict[str, str]]:
    """The environment of a user with the background runner on: HOME and a short runtime folder of the run's own
    (also set in this process, so that it finds the runner's registration)."""
    runtime = Path(tempfile.mkdtemp(prefix="mcpsb-"))
    env = child_env()
    env.pop("MCP_SCHEDULER_NO_BACKGROUND_RUNNER", None)
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    env.update(HOME=str(tmp / "home"), XDG_RUNTIME_DIR=str(runtime))
    saved = {name: os.environ.get(name) for name in ("HOME", "XDG_RUNTIME_DIR", "XDG_STATE_HOME")}
    os.environ.update(HOME=env["HOME"], XDG_RUNTIME_DIR=str(runtime))
    os.environ.pop("XDG_STATE_HOME", None)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(runtime, ignore_errors=True)


async def wait_for_runner(database: str, limit_s: float = 60) -> int:
    """The pid of the store's runner once its socket listens."""
    from mcp_scheduler.runner_info import read_runner_info

    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        info = read_runner_info(database)
        if info is not None and info.ready:
            return info.pid
        await asyncio.sleep(0.02)
    raise RuntimeError(f"no runner listened within {limit_s} s")


def start_runner(database: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`mcp-scheduler runner` on the store, as a person starts it."""
    return subprocess.Popen([PY, "-m", "mcp_scheduler", "runner", "--db", database], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_runner(database: str, env: dict[str, str]) -> None:
    subprocess.run([PY, "-m", "mcp_scheduler", "runner", "stop", "--db", database], env=env, cwd=ROOT,
                   capture_output=True, timeout=60, check=False)


async def spawn_to_tools_list(argv: list[str], errlog: Path, env: dict[str, str] | None = None,
                              ) -> tuple[float, float, float, int]:
    """(ms to the tools/list answer, VmRSS MB and private MB of the server process then, number of tools)."""
    t0 = time.perf_counter()
    rpc = await StdioRpc.spawn(argv, errlog, env)
    try:
        await rpc.initialize()
        tools = await rpc.request("tools/list")
        took = (time.perf_counter() - t0) * 1000
        rss, private = rss_mb(rpc.pid), private_mb(rpc.pid)
    finally:
        await rpc.close()
    return took, rss, private, len(tools["tools"])


async def interpreter_private_mb() -> float:
    """The private memory of a bare Python interpreter of the same installation waiting on stdin (the floor)."""
    proc = await asyncio.create_subprocess_exec(PY, "-c", "import sys; print(flush=True); sys.stdin.read()",
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        await proc.stdout.readline()
        return private_mb(proc.pid)
    finally:
        proc.stdin.close()
        await proc.wait()


async def run(runs: int = 12, first_runs: int = 3) -> Report:
    report = Report(NAME, "thin stdio front-end with the runner alive: spawn -> first tools/list (ms), memory (MB)")
    with temp_dir(NAME) as tmp, user_machine(tmp) as env:
        database = str(tmp / "front.sqlite")
        ours = [PY, "-m", "mcp_scheduler", "--db", database]
        errlog = tmp / "stderr.log"

        first: list[float] = []
        for _ in range(first_runs):  # no runner yet: this front-end starts it and waits until it listens
            took, _, _, _ = await spawn_to_tools_list(ours, errlog, env)
            first.append(took)
            stop_runner(database, env)

        runner = start_runner(database, env)
        try:
            runner_pid = await wait_for_runner(database)
            samples: dict[str, list[float]] = {"ours": [], "bare": []}
            memory: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": []}
            tools: dict[str, int] = {}
            variants = {"ours": (ours, env), "bare": (bare_argv(), None)}
            for name, (argv, variant_env) in variants.items():  # warm-up
                _, _, _, tools[name] = await spawn_to_tools_list(argv, errlog, variant_env)
            for i in range(runs):
                for name in (["ours", "bare"] if i % 2 == 0 else ["bare", "ours"]):  # ABBA against drift
                    argv, variant_env = variants[name]
                    took, rss, private, _ = await spawn_to_tools_list(argv, errlog, variant_env)
                    samples[name].append(took)
                    memory[name].append((rss, private))
            runner_rss = rss_mb(runner_pid)
        finally:
            stop_runner(database, env)
            if runner.poll() is None:
                runner.terminate()
            runner.wait(timeout=60)
        if "Serving in-process" in errlog.read_text(errors="replace"):
            raise RuntimeError(f"a front-end served in-process instead of piping: see {errlog}")

    ours_stats, bare_stats = stats(samples["ours"]), stats(samples["bare"])
    report.add(Row("cold start median, runner alive", ours_stats["median"], "ms", "ratio", bare_stats["median"], GOAL,
                   n=runs))
    report.add(Row("cold start p90, runner alive", ours_stats["p90"], "ms", "ratio", bare_stats["p90"], GOAL, n=runs))
    report.add(Row("  first front-end (starts the runner), median", stats(first)["median"], "ms", "info",
                   bare_stats["median"], n=first_runs))
    ours_private = stats([p for _, p in memory["ours"]])["median"]
    floor = await interpreter_private_mb()
    report.add(Row("front-end private memory (USS), median", ours_private, "MB", "limit", goal=MEMORY_GOAL_MB,
                   n=runs))
    report.add(Row("  of which a bare Python interpreter", floor, "MB", "info", n=1))
    report.add(Row("  front-end VmRSS, median", stats([r for r, _ in memory["ours"]])["median"], "MB", "info",
                   stats([r for r, _ in memory["bare"]])["median"], n=runs))
    report.add(Row("  bare server private memory (USS), median", stats([p for _, p in memory["bare"]])["median"],
                   "MB", "info", n=runs))
    report.add(Row("  the runner's VmRSS (one per store)", runner_rss, "MB", "info", n=1))
    report.note(f"{runs} alternating runs each after 1 warm-up; through the front-end the runner lists "
                f"{tools['ours']} tools, bare {tools['bare']}. VmRSS counts shared pages (libpython, libcrypto) in "
                "every process; USS is what each further front-end adds")
    report.data = {"samples_ms": samples, "first_ms": first, "memory_mb": memory,
                   "stats": {"ours": ours_stats, "bare": bare_stats}}
    return report


if __name__ == "__main__":
    bench_main(run, int)
