"""Stopping a real server process: SIGTERM, SIGINT and closing stdin close the scheduler cleanly.

A run in progress gets `--close-timeout` to finish and is recorded either way; the server exits 0
within the close timeout plus 5 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import TEST_TOKEN, authorized, eventually, free_port, stop, wait_until_listening
from tests.reliability._support import marks, runs

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT = "tests.reliability._support:create_sleeper"
WAIT = 20.0


def server_argv(database: Path | str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mcp_scheduler", "--db", str(database), "--timezone", "UTC",
            "--toolkit", TOOLKIT, *extra]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def sleeper_job(job_id: str, seconds: float, path: Path) -> dict[str, Any]:
    return {
        "schedule_type": "once",
        "schedule": "now",
        "agentool_name": "sleeper",
        "input_data": {"operation": "sleep", "seconds": seconds, "token": job_id, "path": str(path)},
        "job_id": job_id,
    }


async def wait_for_start(path: Path, token: str) -> None:
    await eventually(lambda: (token, "start") in marks(path), within=WAIT, what=f"the start of run {token!r}")


async def wait_for_exit(process: subprocess.Popen[bytes], within: float) -> tuple[int, float]:
    began = time.monotonic()
    await eventually(lambda: process.poll() is not None, within=within, what="the server's exit")
    return process.returncode, time.monotonic() - began


@contextmanager
def http_process(tmp_path: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            server_argv(tmp_path / "s.db", "--transport", "http", "--port", str(port), "--auth-token", TEST_TOKEN,
                        *extra),
            cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_until_listening(process, port, log=str(log))
        yield process, f"http://127.0.0.1:{port}/mcp"
    finally:
        if process.poll() is None:
            stop(process)


@contextmanager
def stdio_process(tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        server_argv(tmp_path / "s.db", *extra),
        cwd=ROOT, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            stop(process)
        log.close()


async def schedule_over_stdio(process: subprocess.Popen[bytes], job: dict[str, Any]) -> None:
    """The JSON-RPC exchange that schedules `job`, written straight to the child's pipes."""
    import json

    assert process.stdin is not None and process.stdout is not None
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "schedule_job", "arguments": job}},
    ]
    for message in messages:
        process.stdin.write(json.dumps(message).encode() + b"\n")
    process.stdin.flush()
    loop = asyncio.get_running_loop()
    for expected in (1, 2):
        answer: dict[str, Any] = {}
        while "id" not in answer:  # notifications (resources/list_changed once the job is added) may come first
            line = await asyncio.wait_for(loop.run_in_executor(None, process.stdout.readline), WAIT)
            answer = json.loads(line)
        assert answer["id"] == expected and "error" not in answer, answer
        assert not answer["result"].get("isError"), answer


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_to_a_stdio_server_lets_the_run_in_progress_finish_and_records_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    mark_file = tmp_path / "marks"
    with stdio_process(tmp_path) as process:
        await schedule_over_stdio(process, sleeper_job("job", 1.0, mark_file))
        await wait_for_start(mark_file, "job")
        process.send_signal(sig)
        code, _ = await wait_for_exit(process, 10 + 5)

    assert code == 0
    assert marks(mark_file) == [("job", "start"), ("job", "end")]
    assert [(r["job_id"], r["status"]) for r in runs(tmp_path / "s.db")] == [("job", "success")]


async def test_closing_stdin_closes_the_scheduler_the_same_way(tmp_path: Path) -> None:
    mark_file = tmp_path / "marks"
    with stdio_process(tmp_path) as process:
        await schedule_over_stdio(process, sleeper_job("job", 1.0, mark_file))
        await wait_for_start(mark_file, "job")
        assert process.stdin is not None
        process.stdin.close()
        code, _ = await wait_for_exit(process, 10 + 5)

    assert code == 0
    assert [(r["job_id"], r["status"]) for r in runs(tmp_path / "s.db")] == [("job", "success")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_to_an_http_server_lets_the_run_in_progress_finish_and_records_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    mark_file = tmp_path / "marks"
    with http_process(tmp_path) as (process, url):
        async with Client(authorized(url)) as client:
            result = await client.call_tool("schedule_job", sleeper_job("job", 1.0, mark_file))
            assert not result.is_error, result.content
        await wait_for_start(mark_file, "job")
        process.send_signal(sig)
        code, _ = await wait_for_exit(process, 10 + 5)

    assert code == 0
    assert marks(mark_file) == [("job", "start"), ("job", "end")]
    assert [(r["job_id"], r["status"]) for r in runs(tmp_path / "s.db")] == [("job", "success")]


async def test_a_run_longer_than_the_close_timeout_is_cancelled_and_recorded(tmp_path: Path) -> None:
    mark_file = tmp_path / "marks"
    with http_process(tmp_path, "--close-timeout", "0.5") as (process, url):
        async with Client(authorized(url)) as client:
            result = await client.call_tool("schedule_job", sleeper_job("long", 30.0, mark_file))
            assert not result.is_error, result.content
        await wait_for_start(mark_file, "long")
        process.send_signal(signal.SIGTERM)
        code, took = await wait_for_exit(process, 0.5 + 5)

    assert code == 0 and took < 0.5 + 5
    assert marks(mark_file) == [("long", "start")]
    [record] = runs(tmp_path / "s.db")
    assert record["status"] == "cancelled" and "shut down" in record["note"]


def test_a_request_still_running_when_stdin_closes_gets_its_answer(tmp_path: Path) -> None:
    # A client that writes its last request and closes its end (a script, a pipe) must still be answered;
    # the SDK alone cancels requests in progress at end of input.
    marks_file = tmp_path / "marks"
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_now", "arguments": {
            "agentool_name": "sleeper",
            "input_data": {"operation": "sleep", "seconds": 1.0, "token": "last", "path": str(marks_file)}}}},
    ]
    done = subprocess.run(
        server_argv(tmp_path / "s.db"), input="".join(json.dumps(line) + "\n" for line in lines).encode(),
        capture_output=True, timeout=60, cwd=ROOT, env=child_env(),
    )
    answers = {a.get("id"): a for a in map(json.loads, done.stdout.decode().splitlines())}
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert 2 in answers, done.stderr.decode()[-2000:]
    assert answers[2]["result"]["structuredContent"]["status"] == "success"
    assert marks(marks_file) == [("last", "start"), ("last", "end")]


# Calls in flight when the server stops: each is answered within --close-timeout + 1 s, with its result if its run
# ends within the close timeout, else with an error that says the run was cancelled and is recorded so.

CLOSE_TIMEOUT = 2.0
SHORT, LONG = (0.3, 1.0), (30.0, 30.0)  # runs that end within the close timeout, and runs that do not
CANCELLED_WORDS = ("cancelled: the server shut down and its close timeout (2 s) ran out",
                   "recorded 'cancelled'", "check what it did before running it again")


def run_now_call(token: str, seconds: float, path: Path) -> dict[str, Any]:
    return {"agentool_name": "sleeper",
            "input_data": {"operation": "sleep", "seconds": seconds, "token": token, "path": str(path)}}


def check_answers(answers: dict[str, tuple[bool, str, float]], tmp_path: Path) -> float:
    """Every call answered within the close timeout + 1 s: the short runs with their result, the long ones with
    the cancellation in words; each run recorded as it was answered. Returns the slowest answer's delay."""
    assert sorted(answers) == ["long-0", "long-1", "short-0", "short-1"], answers
    for token, (is_error, text, _) in answers.items():
        if token.startswith("short"):
            assert not is_error and json.loads(text)["status"] == "success", (token, text)
        else:
            assert is_error and all(words in text for words in CANCELLED_WORDS), (token, text)
    slowest = max(delay for _, _, delay in answers.values())
    assert slowest <= CLOSE_TIMEOUT + 1, answers
    recorded = sorted(r["status"] for r in runs(tmp_path / "s.db"))
    assert recorded == ["cancelled", "cancelled", "success", "success"], recorded
    return slowest


def tokens() -> list[tuple[str, float]]:
    return [(f"short-{i}", s) for i, s in enumerate(SHORT)] + [(f"long-{i}", s) for i, s in enumerate(LONG)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_calls_in_flight_over_stdio_are_answered_within_the_close_timeout_when_a_signal_stops_the_server(
    tmp_path: Path, sig: signal.Signals, figures: Any
) -> None:
    mark_file = tmp_path / "marks"
    loop = asyncio.get_running_loop()
    with stdio_process(tmp_path, "--close-timeout", str(CLOSE_TIMEOUT)) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}).encode()
            + b"\n" + json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode() + b"\n")
        for token, seconds in tokens():
            process.stdin.write(json.dumps({"jsonrpc": "2.0", "id": token, "method": "tools/call", "params": {
                "name": "run_now", "arguments": run_now_call(token, seconds, mark_file)}}).encode() + b"\n")
        process.stdin.flush()
        for token, _ in tokens():
            await wait_for_start(mark_file, token)
        signalled = time.monotonic()
        process.send_signal(sig)
        answers: dict[str, tuple[bool, str, float]] = {}
        while line := await asyncio.wait_for(loop.run_in_executor(None, process.stdout.readline), WAIT):
            answer = json.loads(line)
            if answer.get("id") != "init":
                result = answer["result"]
                answers[answer["id"]] = (bool(result.get("isError")), json.dumps(result["content"][0]["text"]),
                                         time.monotonic() - signalled)
        code, _ = await wait_for_exit(process, WAIT)
        exit_after = time.monotonic() - signalled

    assert code == 0
    slowest = check_answers({k: (e, json.loads(t), d) for k, (e, t, d) in answers.items()}, tmp_path)
    figures.add(f"shutdown_stdio_{sig.name}", calls=4, answered=len(answers), close_timeout_s=CLOSE_TIMEOUT,
                slowest_answer_s=round(slowest, 2), exit_after_s=round(exit_after, 2))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_calls_in_flight_over_http_are_answered_within_the_close_timeout_when_a_signal_stops_the_server(
    tmp_path: Path, sig: signal.Signals, figures: Any
) -> None:
    # Two protocol eras: "legacy" clients hold a session (and its GET stream), "auto" ones speak 2026-07-28.
    mark_file = tmp_path / "marks"
    answers: dict[str, tuple[bool, str, float]] = {}
    signalled: list[float] = []

    async def call(url: str, token: str, seconds: float, mode: str) -> None:
        async with Client(authorized(url), mode=mode) as client:  # type: ignore[arg-type]
            result = await client.call_tool("run_now", run_now_call(token, seconds, mark_file))
            text = " ".join(getattr(block, "text", "") for block in result.content)
            answers[token] = (result.is_error, text, time.monotonic() - signalled[0])

    with http_process(tmp_path, "--close-timeout", str(CLOSE_TIMEOUT)) as (process, url):
        calls = [asyncio.ensure_future(call(url, token, seconds, ("legacy", "auto")[i % 2]))
                 for i, (token, seconds) in enumerate(tokens())]
        for token, _ in tokens():
            await wait_for_start(mark_file, token)
        signalled.append(time.monotonic())
        process.send_signal(sig)
        await asyncio.wait_for(asyncio.gather(*calls), WAIT)
        code, _ = await wait_for_exit(process, WAIT)
        exit_after = time.monotonic() - signalled[0]

    assert code == 0
    slowest = check_answers(answers, tmp_path)
    assert exit_after <= CLOSE_TIMEOUT + 3, exit_after  # not the 30 s the cancelled runs would have taken
    figures.add(f"shutdown_http_{sig.name}", calls=4, answered=len(answers), close_timeout_s=CLOSE_TIMEOUT,
                slowest_answer_s=round(slowest, 2), exit_after_s=round(exit_after, 2))
