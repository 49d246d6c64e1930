"""Shared helpers: statistics, the result table, JSON results and a minimal stdio JSON-RPC client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PY = sys.executable
HANDSHAKE_VERSION = "2025-11-25"
LOG_INPUT = {"operation": "log", "level": "INFO", "message": "tick"}
"""The input of the jobs the benchmarks schedule (the built-in `logging` AgenTool)."""
HTTP_TOKEN = "bench-local-token"
"""The `--auth-token` of the HTTP servers the benchmarks start (127.0.0.1, for the run only)."""


@contextlib.asynccontextmanager
async def http_transport(url: str) -> AsyncIterator[Any]:
    """A streamable HTTP transport to a benchmark's server, sending its token: `Client(http_transport(url))`."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {HTTP_TOKEN}"}, timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


# ----------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stats(values: Sequence[float]) -> dict[str, Any]:
    """n, median, p90, p99, max, min and mean of a sample."""
    return {
        "n": len(values),
        "median": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "min": min(values) if values else math.nan,
        "mean": sum(values) / len(values) if values else math.nan,
    }


# ----------------------------------------------------------------------------- report

Kind = Literal["ratio", "limit", "info"]


@dataclass
class Row:
    """One figure. `ratio`: value/baseline must be <= goal. `limit`: value must be <= goal. `info`: no goal.

    With `higher_is_better` (throughputs) the ratio is baseline/value, i.e. how many times slower.
    """

    figure: str
    value: float
    unit: str
    kind: Kind = "info"
    baseline: float | None = None
    goal: float | None = None
    higher_is_better: bool = False
    n: int | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.kind == "limit" and self.goal:
            return self.value / self.goal
        if self.baseline is None or not self.value or not self.baseline:
            return None
        return self.baseline / self.value if self.higher_is_better else self.value / self.baseline

    @property
    def verdict(self) -> str:
        if self.kind == "info" or self.goal is None:
            return "-"
        if self.kind == "limit":
            return "PASS" if self.value <= self.goal else "MISS"
        ratio = self.ratio
        return "PASS" if ratio is not None and ratio <= self.goal else "MISS"

    def goal_text(self) -> str:
        if self.goal is None:
            return "-"
        if self.kind == "limit":
            return f"<= {_fmt(self.goal)} {self.unit}"
        return f"ratio <= {self.goal:g}"


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Report:
    """The rows of one benchmark, printed as a table and written as JSON."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)

    def table(self) -> str:
        head = ["figure", "ours", "baseline", "unit", "ratio", "goal", "n", "verdict"]
        body = [
            [
                r.figure,
                _fmt(r.value),
                _fmt(r.baseline) if r.kind != "limit" else "-",
                r.unit,
                "-" if r.ratio is None else f"{r.ratio:.2f}",
                r.goal_text(),
                "-" if r.n is None else str(r.n),
                r.verdict,
            ]
            for r in self.rows
        ]
        widths = [max(len(h), *(len(line[i]) for line in body)) if body else len(h) for i, h in enumerate(head)]
        aligned_left = {0, 3, 5, 7}

        def line(cells: list[str]) -> str:
            pairs = enumerate(zip(cells, widths, strict=True))
            return "  ".join(c.ljust(w) if i in aligned_left else c.rjust(w) for i, (c, w) in pairs)

        out = [f"== {self.name}: {self.title}", line(head), line(["-" * w for w in widths])]
        out += [line(cells) for cells in body]
        out += [f"   note: {n}" for n in self.notes]
        return "\n".join(out)

    def finish(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        print(self.table())
        print(f"   ({self.name} took {elapsed:.1f} s)", flush=True)
        payload = {
            "name": self.name,
            "title": self.title,
            "when": datetime.now(UTC).isoformat(),
            "elapsed_s": round(elapsed, 2),
            "machine": machine_info(),
            "rows": [asdict(r) | {"ratio": r.ratio, "verdict": r.verdict} for r in self.rows],
            "notes": self.notes,
            "data": self.data,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(json.dumps(payload, indent=2, default=str))
        return payload


def machine_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "loadavg": load}


# ----------------------------------------------------------------------------- files and processes


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def ours_argv(database: str | os.PathLike[str]) -> list[str]:
    """The real stdio server, exactly as a client configures it."""
    return [PY, "-m", "mcp_scheduler", "--db", os.fspath(database)]


def bare_argv() -> list[str]:
    """A bare `MCPServer` with one no-op tool, over stdio."""
    return [PY, "-m", "bench.bare_server"]


def child_env() -> dict[str, str]:
    """The environment of the servers a benchmark starts: they run the jobs themselves, never a background
    runner that would outlive the benchmark (bench/frontend.py starts one on purpose, in folders of its own)."""
    env = dict(os.environ)
    env["MCP_SCHEDULER_NO_BACKGROUND_RUNNER"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RpcError(RuntimeError):
    pass


class StdioRpc:
    """A minimal JSON-RPC client over a child's stdin/stdout (so timings exclude any client library)."""

    def __init__(self, proc: asyncio.subprocess.Process, errlog: Path) -> None:
        self.proc = proc
        self.errlog = errlog
        self._next_id = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def spawn(cls, argv: list[str], errlog: Path, env: dict[str, str] | None = None) -> StdioRpc:
        with errlog.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                cwd=ROOT,
                env=env or child_env(),
                limit=64 * 1024 * 1024,
            )
        return cls(proc, errlog)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})})

    async def request(self, method: str, params: dict[str, Any] | None = None, limit_s: float = 120) -> Any:
        self._next_id += 1
        rid = self._next_id
        await self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params or {}})
        assert self.proc.stdout is not None
        async with asyncio.timeout(limit_s):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    tail = self.errlog.read_text(errors="replace")[-2000:]
                    raise RpcError(f"server closed stdout while waiting for {method}; stderr tail:\n{tail}")
                message = json.loads(line)
                if message.get("id") != rid:
                    continue  # a notification or a server->client request
                if "error" in message:
                    raise RpcError(f"{method}: {message['error']}")
                return message["result"]

    async def initialize(self) -> Any:
        result = await self.request(
            "initialize",
            {
                "protocolVersion": HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        await self.notify("notifications/initialized")
        return result

    async def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> Any:
        result = await self.request("tools/call", {"name": name, "arguments": arguments or {}})
        if result.get("isError"):
            raise RpcError(f"tool {name} failed: {result.get('content')}")
        return result

    async def close(self, limit_s: float = 15) -> int:
        """Close stdin (the stdio way to stop a server) and wait; terminate, then kill, if it lingers."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(limit_s):
                return await self.proc.wait()
        except TimeoutError:
            self.proc.terminate()
            try:
                async with asyncio.timeout(5):
                    return await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                return await self.proc.wait()


# ----------------------------------------------------------------------------- the trivial AgenTool


def register_noop(name: str = "noop", *, with_agent: bool = False, registry: Any = None) -> Any:
    """Register a trivial AgenTool `noop` (operation 'noop', one int field); returns its tool function.

    `with_agent` registers it through `create_agentool` (which also builds its pydantic-ai Agent);
    `registry` is where (default: the active injector's).
    """
    from pydantic import Field

    from agentool_bridge import BaseOperationInput, RoutingConfig, create_agentool, register_agentool

    class NoopInput(BaseOperationInput):
        """Does nothing and returns its input value."""

        operation: Literal["noop"] = Field(description="Do nothing.")
        value: int = Field(default=0, description="Returned as is.")

    async def noop(operation: str, value: int) -> dict[str, Any]:
        return {"value": value}

    factory = create_agentool if with_agent else register_agentool
    factory(name, NoopInput, RoutingConfig(operation_map={"noop": ("noop", None)}), [noop], registry=registry)
    return noop


def bench_main(run: Callable[..., Awaitable[Report]], convert: Callable[[str], Any]) -> None:
    """Run one benchmark as a program: `python -m bench.NAME [ARG...]` passes the converted ARGs to `run`."""
    asyncio.run(run(*(convert(arg) for arg in sys.argv[1:]))).finish()
    sys.exit(0)


@dataclass
class Postgres:
    """A fresh schema on the PostgreSQL server that scripts/postgres.sh finds or starts, or why there is none.

    `url` carries the schema as its search_path (`options=-csearch_path%3D<schema>`); `base` is the
    server's URL without it. Both are None when no server could be had; `reason` says why.
    """

    url: str | None
    base: str | None
    schema: str
    reason: str = ""


@contextlib.asynccontextmanager
async def postgres_schema(prefix: str = "bench") -> AsyncIterator[Postgres]:
    """Yield a `Postgres` with a fresh schema (dropped on exit, and a throwaway cluster stopped)."""
    import secrets
    import subprocess

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "scripts" / "postgres.sh"), *args], capture_output=True, text=True, timeout=600, check=False
        )

    schema = f"{prefix}_{secrets.token_hex(4)}"
    try:
        import psycopg
    except ImportError:
        yield Postgres(None, None, schema, "psycopg is not installed (pip install -e '.[dev]')")
        return
    started = await asyncio.to_thread(script, "start")
    lines = started.stdout.split()
    if started.returncode != 0 or not lines:
        yield Postgres(None, None, schema, f"no PostgreSQL server: {started.stderr.strip()[-500:]}")
        return
    base = lines[0]
    try:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in base else "?"
            yield Postgres(f"{base}{separator}options=-csearch_path%3D{schema}", base, schema)
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        if len(lines) > 1:
            await asyncio.to_thread(script, "stop", lines[1])


def started_at(database: str | os.PathLike[str], prefix: str = "") -> dict[str, datetime]:
    """job_id -> `started_at` of its run records in the database (SQLite file or PostgreSQL URL)."""
    query = "SELECT job_id, record FROM scheduler_runs WHERE job_id LIKE %s"
    rows: list[tuple[str, str]]
    if str(database).startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(str(database)) as conn:
            rows = conn.execute(query, (f"{prefix}%",)).fetchall()  # type: ignore[arg-type]
    else:
        import sqlite3

        conn3 = sqlite3.connect(database)
        try:
            rows = conn3.execute(query.replace("%s", "?"), (f"{prefix}%",)).fetchall()
        finally:
            conn3.close()
    return {job_id: datetime.fromisoformat(json.loads(record)["started_at"]) for job_id, record in rows}


def quiet_logging() -> None:
    """Keep the scheduler's INFO logs off the tables (warnings still show)."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("mcp_scheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
