"""Many real MCP clients over streamable HTTP against one server process: no errors, nothing lost.

N clients (half in the 2026-07-28 era, half with the initialize handshake) call for T seconds a mix
of schedule_job, list_jobs, get_job, run_now (the `queue` AgenTool: each run enqueues a message)
and cancel_job. Then:
- no call failed (in particular no "database is locked");
- acknowledged means present: every job whose schedule_job answered is in the database, unless
  its cancel_job answered (then it is gone); every run_now that answered has its run record and
  its queue message.
Latency p50/p99 and the call counts are the `concurrent_http` figure. `make test`: 10 clients x
6 s; `make soak`: 50 clients x 60 s (`MCP_SCHEDULER_HTTP_CLIENTS`, `MCP_SCHEDULER_HTTP_SECONDS`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import authorized, free_port, read_token, stop, wait_until_listening
from tests.reliability._figures import Figures

QUEUE = "load"


@dataclass
class Ledger:
    """What the server answered, across all clients."""

    scheduled: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    def took(self, tool: str, seconds: float) -> None:
        self.latencies.setdefault(tool, []).append(seconds)
        self.calls[tool] += 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    database = tmp_path / "load.db"
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", str(port), "--db", str(database),
             "--timezone", "UTC", "--log-level", "WARNING", "--token-file", str(tmp_path / "token")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_until_listening(process, port, log=str(log))
        yield f"http://127.0.0.1:{port}/mcp", database, process
    finally:
        stop(process)


async def one_client(url: str, token: str, index: int, deadline: float, ledger: Ledger) -> None:
    rng = random.Random(index)
    mine: list[str] = []
    mode = "legacy" if index % 2 else "auto"
    async with Client(authorized(url, token), mode=mode) as client:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            roll = rng.random()
            if roll < 0.30 or not mine:
                tool = "schedule_job"
                job_id = f"c{index}-{n}"
                args: dict[str, Any] = {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging",
                                        "input_data": {"operation": "log", "level": "INFO", "message": job_id},
                                        "job_id": job_id}
            elif roll < 0.50:
                tool, args = "list_jobs", {"limit": 20}
            elif roll < 0.70:
                tool, args = "get_job", {"job_id": rng.choice(mine)}
            elif roll < 0.85:
                tool = "run_now"
                message = {"client": index, "n": n}
                args = {"agentool_name": "queue",
                        "input_data": {"operation": "enqueue", "queue_name": QUEUE, "message": message}}
            else:
                tool = "cancel_job"
                job_id = mine.pop(rng.randrange(len(mine)))
                args = {"job_id": job_id}
            began = time.perf_counter()
            try:
                result = await client.call_tool(tool, args)
            except Exception as exc:
                ledger.errors.append(f"{tool}: {type(exc).__name__}: {exc}")
                continue
            finally:
                ledger.took(tool, time.perf_counter() - began)
            if result.is_error:
                text = " ".join(getattr(block, "text", "") for block in result.content)
                ledger.errors.append(f"{tool}({args.get('job_id', '')}): {text[:300]}")
                continue
            answer = result.structured_content or {}
            if tool == "schedule_job":
                ledger.scheduled.add(answer["job_id"])
                mine.append(answer["job_id"])
            elif tool == "cancel_job":
                ledger.cancelled.add(answer["job_id"])
            elif tool == "run_now":
                ledger.runs.add(answer["run_id"])


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def stored(database: Path) -> tuple[set[str], set[str], int]:
    with sqlite3.connect(database) as conn:
        jobs = {job_id for (job_id,) in conn.execute("SELECT job_id FROM scheduler_jobs")}
        runs = {run_id for (run_id,) in conn.execute("SELECT run_id FROM scheduler_runs")}
        (messages,) = conn.execute(
            "SELECT COUNT(*) FROM agentool_queue_messages WHERE queue_name = ?", (QUEUE,)
        ).fetchone()
    conn.close()
    return jobs, runs, int(messages)


async def load(server: tuple[str, Path, subprocess.Popen[bytes]], figures: Figures, clients: int, seconds: float,
               name: str) -> None:
    url, database, process = server
    token = read_token(database.with_name("token"))  # the token the server generated for itself
    ledger = Ledger()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    outcomes = await asyncio.gather(*(one_client(url, token, i, deadline, ledger) for i in range(clients)),
                                    return_exceptions=True)
    elapsed = time.monotonic() - started
    ledger.errors += [f"client failed: {type(o).__name__}: {o}" for o in outcomes if isinstance(o, BaseException)]
    assert stop(process, within=30) == 0  # a clean close: everything answered is written
    jobs, runs, messages = stored(database)

    everything = [t for times in ledger.latencies.values() for t in times]
    missing_jobs = sorted(ledger.scheduled - ledger.cancelled - jobs)
    cancelled_present = sorted(ledger.cancelled & jobs)
    missing_runs = sorted(ledger.runs - runs)
    locked = sum("database is locked" in e for e in ledger.errors)
    figures.add(
        name,
        clients=clients,
        seconds=round(elapsed, 1),
        calls=sum(ledger.calls.values()),
        calls_per_second=round(sum(ledger.calls.values()) / elapsed, 1),
        by_tool=dict(ledger.calls),
        errors=len(ledger.errors),
        database_locked=locked,
        acknowledged_jobs=len(ledger.scheduled),
        cancelled=len(ledger.cancelled),
        acknowledged_runs=len(ledger.runs),
        missing_jobs=len(missing_jobs),
        missing_runs=len(missing_runs),
        missing_queue_messages=len(ledger.runs) - messages,
        p50_ms=round(1000 * percentile(everything, 50), 1),
        p99_ms=round(1000 * percentile(everything, 99), 1),
        p99_ms_by_tool={tool: round(1000 * percentile(times, 99), 1) for tool, times in ledger.latencies.items()},
    )
    assert not ledger.errors, json.dumps(ledger.errors[:10], indent=1)
    assert not missing_jobs, f"acknowledged jobs missing: {missing_jobs[:10]}"
    assert not cancelled_present, f"cancelled jobs still stored: {cancelled_present[:10]}"
    assert not missing_runs, f"acknowledged run_now records missing: {missing_runs[:10]}"
    assert messages == len(ledger.runs), f"{len(ledger.runs)} run_now answered, {messages} queue messages stored"
    assert ledger.calls["schedule_job"] > 0 and ledger.calls["run_now"] > 0 and ledger.calls["cancel_job"] > 0


async def test_concurrent_http_clients_get_no_errors_and_lose_nothing_acknowledged(
    server: tuple[str, Path, subprocess.Popen[bytes]], figures: Figures
) -> None:
    clients = int(os.environ.get("MCP_SCHEDULER_HTTP_CLIENTS", "10"))
    seconds = float(os.environ.get("MCP_SCHEDULER_HTTP_SECONDS", "6"))
    await load(server, figures, clients, seconds, "concurrent_http")


@pytest.mark.soak
async def test_concurrent_http_clients_soak(
    server: tuple[str, Path, subprocess.Popen[bytes]], figures: Figures
) -> None:
    await load(server, figures, 50, 60, "concurrent_http_soak")
