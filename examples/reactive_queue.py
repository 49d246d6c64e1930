"""Reactive pattern: a job sends its results to a queue, and a client reacts to each new message.

The client subscribes to `scheduler://queues/<name>` (handshake era) and, when the server says the
resource changed, takes the message with the `read_queue` tool. No polling.

    python examples/reactive_queue.py --db /tmp/reactive.sqlite --messages 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters

QUEUE = "heartbeat-results"


async def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file of the scheduler")
    parser.add_argument("--messages", type=int, default=3, help="how many results to react to")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each result")
    args = parser.parse_args(argv)

    changed = asyncio.Event()

    async def on_message(message: Any) -> None:
        if getattr(message, "method", None) == "notifications/resources/updated" and str(
            message.params.uri
        ) == f"scheduler://queues/{QUEUE}":
            changed.set()

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_scheduler", "--db", args.db, "--log-level", "WARNING"]
    )
    received: list[dict[str, Any]] = []
    async with Client(server, mode="legacy", message_handler=on_message) as client:
        await client.subscribe_resource(f"scheduler://queues/{QUEUE}")
        job = await client.call_tool(
            "schedule_job",
            {
                "job_name": "heartbeat",
                "schedule_type": "interval",
                "schedule": "1s",
                "agentool_name": "storage_kv",
                "input_data": {"operation": "set", "key": "heartbeat", "value": "alive"},
                "result_queue": QUEUE,
            },
        )
        job_id = job.structured_content["job_id"]
        while len(received) < args.messages:
            await asyncio.wait_for(changed.wait(), args.timeout)
            changed.clear()
            taken = await client.call_tool("read_queue", {"queue_name": QUEUE, "mode": "take", "count": 10})
            for item in taken.structured_content["messages"]:
                received.append(item["message"])
                print(f"reacted to run {item['message']['run_id']} of {item['message']['job_id']}: "
                      f"{item['message']['status']}")
        await client.call_tool("cancel_job", {"job_id": job_id})
    return received


if __name__ == "__main__":
    asyncio.run(main())
