"""`storage_kv` keys per owner, through a real `mcp-scheduler --transport http` with named tokens: a job's runs
(and `run_now` of the kind) read and write their owner's keys alone, under the names the owner gave; `keys` lists
them alone; an admin's job keeps the shared keys and sees every stored key, others' by their stored names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.conftest import error_text, http_server, structured
from tests.server.test_queue_owners import ROOT_TOKEN, TOKENS, connect, job

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ALICE_TOKEN, BOB_TOKEN = "queues-alice-T0ken", "queues-bob-T0ken"


def kv(operation: str, **fields: Any) -> dict[str, Any]:
    return {"operation": operation, **fields}


async def test_each_principal_s_runs_use_its_own_keys_and_an_admin_s_the_shared_ones(tmp_path: Path) -> None:
    with http_server(tmp_path, "--transport", "http", *TOKENS) as running:
        url = f"{running.base}/mcp"
        async with connect(url, ALICE_TOKEN) as alice, connect(url, BOB_TOKEN) as bob, \
                connect(url, ROOT_TOKEN) as root:

            async def run(client: Any, agentool_input: dict[str, Any], job_id: str | None = None) -> Any:
                if job_id is None:
                    return await client.call_tool("run_now", {"agentool_name": "storage_kv",
                                                              "input_data": agentool_input})
                structured(await client.call_tool("schedule_job", job(job_id, "storage_kv", agentool_input)))
                return await client.call_tool("run_now", {"job_id": job_id})

            structured(await run(root, kv("set", key="token", value="the operator's")))
            structured(await run(alice, kv("set", key="token", value="alice's"), "alices-set"))
            alices_get = structured(await run(alice, kv("get", key="token"), "alices-get"))
            bobs_get = error_text(await run(bob, kv("get", key="token"), "bobs-get"))
            bobs_forged = error_text(await run(bob, kv("get", key="~token:alice/token")))
            bobs_keys = structured(await run(bob, kv("keys")))
            alices_keys = structured(await run(alice, kv("keys")))
            roots_get = structured(await run(root, kv("get", key="token"), "roots-get"))
            roots_keys = structured(await run(root, kv("keys")))
            roots_view = structured(await run(root, kv("get", key="~token:alice/token")))

    assert alices_get["result"]["data"]["value"] == "alice's" and alices_get["result"]["data"]["key"] == "token"
    assert "not found in storage_kv" in bobs_get
    assert "another principal's keys" in bobs_forged
    assert bobs_keys["result"]["data"]["keys"] == []
    assert alices_keys["result"]["data"]["keys"] == ["token"]
    assert roots_get["result"]["data"]["value"] == "the operator's"  # the shared key, as before keys had owners
    assert roots_keys["result"]["data"]["keys"] == ["token", "~token:alice/token"]
    assert roots_view["result"]["data"]["value"] == "alice's"
