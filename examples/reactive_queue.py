"""Reactive pattern: a job sends its results to a queue, and a client reacts to each new message.

The client listens for changes of the resource `scheduler://queues/<name>` and, each time the server
says it changed, takes the new messages with the `read_queue` tool. No polling.

By default the client speaks the current protocol (2026-07-28: a `subscriptions/listen` stream);
`--legacy` uses the handshake era (`resources/subscribe` and `notifications/resources/updated`),
which older clients such as Claude Desktop speak.

    python examples/reactive_queue.py --db /tmp/reactive.sqlite --messages 3 [--legacy]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.subscriptions import ResourceUpdated

QUEUE = "heartbeat-results"
URI = f"scheduler://queues/{QUEUE}"


@contextlib.asynccontextmanager
async def queue_changes(server: StdioServerParameters, legacy: bool) -> AsyncIterator[tuple[Client, asyncio.Event]]:
    """A connected client and an event that is set whenever the queue resource changes."""
    changed = asyncio.Event()
    if legacy:

        async def on_message(message: Any) -> None:
            if getattr(message, "method", None) == "notifications/resources/updated" and str(message.params.uri) == URI:
                changed.set()

        async with Client(server, mode="legacy", message_handler=on_message) as client:
            await client.subscribe_resource(URI)
            yield client, changed
        return

    async with Client(server) as client, client.listen(resource_subscriptions=[URI]) as subscription:

        async def pump() -> None:
            async for event in subscription:
                if isinstance(event, ResourceUpdated) and event.uri == URI:
                    changed.set()

        listener = asyncio.create_task(pump())
        try:
            yield client, changed
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file of the scheduler")
    parser.add_argument("--messages", type=int, default=3, help="how many results to react to")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each result")
    parser.add_argument("--legacy", action="store_true", help="use the handshake era (resources/subscribe)")
    args = parser.parse_args(argv)

    server = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_scheduler", "--db", args.db, "--log-level", "WARNING"]
    )
    received: list[dict[str, Any]] = []
    async with queue_changes(server, args.legacy) as (client, changed):
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
                message = item["message"]
                received.append(message)
                print(f"reacted to run {message['run_id']} of {message['job_id']}: {message['status']}")
        await client.call_tool("cancel_job", {"job_id": job_id})
    return received


if __name__ == "__main__":
    asyncio.run(main())
