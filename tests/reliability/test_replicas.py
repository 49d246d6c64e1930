"""HTTP replicas on one PostgreSQL database behind a load balancer without sticky sessions: with
--stateless-http a request may reach any replica, including the handshake era's session requests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client

from tests._net import authorized, bearer, free_port, stop
from tests.reliability.test_kill9 import start_servers

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **bearer()}


def _answer(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer of a POST, sent as JSON or as one server-sent event."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        return dict(response.json())
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return dict(json.loads(data[-1]))


async def test_three_stateless_replicas_answer_any_request_of_a_session(postgres_url: str, tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / f"{i}.log" for i in range(3)]
    processes: list[subprocess.Popen[bytes]] = start_servers(postgres_url, ports, logs, "--stateless-http")
    try:
        async with httpx2.AsyncClient(timeout=20, headers=HEADERS) as http:
            # A handshake-era session whose requests a round-robin balancer spreads over the replicas.
            hello = await http.post(urls[0], json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "balanced", "version": "0"}}})
            session = {k: v for k, v in hello.headers.items() if k.lower() == "mcp-session-id"}
            assert "result" in _answer(hello)
            await http.post(urls[1], headers=session, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
            scheduled = _answer(await http.post(urls[1], headers=session, json={
                "jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "schedule_job", "arguments": {
                    "job_id": "balanced", "schedule_type": "interval", "schedule": "1 hour",
                    "agentool_name": "logging", "input_data": {"operation": "log", "message": "hi"}}}}))
            assert not scheduled["result"].get("isError"), scheduled
            got = _answer(await http.post(urls[2], headers=session, json={
                "jsonrpc": "2.0", "id": 3, "method": "tools/call",
                "params": {"name": "get_job", "arguments": {"job_id": "balanced"}}}))
            assert got["result"].get("structuredContent"), got
            assert got["result"]["structuredContent"]["job"]["job_id"] == "balanced"
        roles = []
        for url in urls:  # modern-era clients: every request stands alone anyway
            async with Client(authorized(url)) as client:
                status = (await client.call_tool("scheduler_status", {})).structured_content or {}
                roles.append(status.get("role"))
        assert sorted(roles) == ["runner", "standby", "standby"]
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)
