"""What a real server writes to stderr holds no secret value and no query string of a library's URL.

`python -m mcp_scheduler` runs over stdio as a subprocess; a job requests a local HTTP server with a
secret URL and a secret in its query; the server's whole stderr is then read. Over streamable HTTP,
uvicorn's access log is read the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx2
import pytest

from mcp_scheduler.cli.log_filter import SecretLogFilter, drop_queries
from tests.toolkits._http_server import LocalServer, serve_http

from .conftest import WAIT, http_server

TOKEN = "tok-9f3a/b+c=d e"
STARTED = 30.0
"""Seconds for the first answer, which waits for the server's start: 10 s (WAIT) was too short under a load of 20 on
2 cores (seen in a full run); the other waits stay WAIT."""
PATH_PART = "hidden-path-7731"


@pytest.fixture(scope="module")
def web() -> Iterator[LocalServer]:
    with serve_http() as running:
        yield running


async def session(tmp_path: Path, web: LocalServer, *flags: str) -> tuple[dict[str, Any], str]:
    """Run one http job (run_now) through a stdio server; its answer and everything it wrote to stderr."""
    env = {**os.environ, "SS_LOG_TOKEN": TOKEN, "SS_LOG_URL": f"{web.url}/echo/{PATH_PART}"}
    env.pop("MCP_SCHEDULER_SECRET", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcp_scheduler", "--db", str(tmp_path / "logs.db"), "--timezone", "UTC",
        "--secret", "SS_LOG_TOKEN", "--secret", "SS_LOG_URL", *flags,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )
    assert process.stdin and process.stdout
    job = {"agentool_name": "http", "input_data": {"operation": "request", "url": "!env:SS_LOG_URL",
                                                   "query": {"key": "!env:SS_LOG_TOKEN"}}}
    requests: list[dict[str, Any]] = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_now", "arguments": job}},
    ]
    try:
        for request in requests:
            process.stdin.write(json.dumps(request).encode() + b"\n")
        await process.stdin.drain()
        answer: dict[str, Any] = {}
        while answer.get("id") != 2:
            line = await asyncio.wait_for(process.stdout.readline(), STARTED if not answer else WAIT)
            assert line, "stdout closed before the answer"
            answer = json.loads(line)
        process.stdin.close()
        _, stderr = await asyncio.wait_for(process.communicate(), WAIT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert web.received_at(f"/echo/{PATH_PART}")[-1]["query"] == {"key": TOKEN}  # the request had the values
    return answer, stderr.decode()


def assert_clean(stderr: str) -> None:
    assert TOKEN not in stderr and "tok-9f3a" not in stderr
    assert PATH_PART not in stderr
    assert "?key=" not in stderr


async def test_the_server_log_at_info_holds_no_secret_and_no_query(tmp_path: Path, web: LocalServer) -> None:
    answer, stderr = await session(tmp_path, web)

    assert answer["result"]["structuredContent"]["status"] == "success"
    assert "HTTP Request" not in stderr  # httpx2's line per request is below the log level
    assert_clean(stderr)


async def test_the_server_log_at_debug_shows_requests_without_query_or_secret(
    tmp_path: Path, web: LocalServer
) -> None:
    answer, stderr = await session(tmp_path, web, "--log-level", "DEBUG")

    assert answer["result"]["structuredContent"]["status"] == "success"
    [line] = [line for line in stderr.splitlines() if "HTTP Request:" in line]
    assert "GET !env:SS_LOG_URL " in line
    assert_clean(stderr)


def test_the_http_transport_access_log_holds_no_query(tmp_path: Path) -> None:
    with http_server(tmp_path, "--transport", "http") as running:
        # Whatever the answer (a token may be required), uvicorn logs the request line.
        httpx2.get(f"{running.base}/mcp?token=query-secret-5521&x=1", timeout=WAIT)
        httpx2.get(f"{running.base}/nothing-here?token=query-secret-5521", timeout=WAIT)
    log = (tmp_path / "server.log").read_text()

    assert '"GET /mcp HTTP/1.1"' in log and '"GET /nothing-here HTTP/1.1"' in log
    assert "query-secret-5521" not in log and "?token" not in log


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ('HTTP Request: GET https://api.example/v1/items?key=abc&n=2 "HTTP/1.1 200 OK"',
         'HTTP Request: GET https://api.example/v1/items "HTTP/1.1 200 OK"'),
        ('127.0.0.1:51234 - "GET /mcp?token=abc HTTP/1.1" 401', '127.0.0.1:51234 - "GET /mcp HTTP/1.1" 401'),
        ("Connecting to StreamableHTTP endpoint: http://127.0.0.1:8000/mcp?api_key=abc",
         "Connecting to StreamableHTTP endpoint: http://127.0.0.1:8000/mcp"),
        ("no url here? none", "no url here? none"),
    ],
)
def test_query_strings_are_dropped_from_urls_and_request_paths(line: str, shown: str) -> None:
    assert drop_queries(line) == shown


def test_the_filter_redacts_secret_values_in_messages_arguments_and_tracebacks() -> None:
    log_filter = SecretLogFilter({TOKEN: "!env:SS_LOG_TOKEN"})
    try:
        raise RuntimeError(f"refused {TOKEN}")
    except RuntimeError:
        record = logging.getLogger("mcp_scheduler.test").makeRecord(
            "mcp_scheduler.test", logging.ERROR, __file__, 1, "sent %s to %s", (TOKEN, "https://h/p?q=1"),
            sys.exc_info(),
        )
    library = logging.getLogger("somelib").makeRecord(
        "somelib", logging.INFO, __file__, 1, "GET https://h/p?key=%s", (quote_plus(TOKEN),), None
    )

    assert log_filter.filter(record) and log_filter.filter(library)
    text = logging.Formatter().format(record)
    assert "sent !env:SS_LOG_TOKEN to https://h/p?q=1" in text  # the project's own records keep their URLs
    assert "refused !env:SS_LOG_TOKEN" in text and TOKEN not in text
    assert library.getMessage() == "GET https://h/p"
