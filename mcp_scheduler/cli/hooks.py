"""`mcp-scheduler hook create JOB_ID | list JOB_ID | remove NAME`: the inbound webhooks of a store's jobs.

`create` prints the hook's URL and its signing secret, once (nothing shows the secret again: remove the hook and
create another to change it). The command opens a scheduler of its own for the moment, as `pause` does
(`job_actions.py`); a server on the same store takes deliveries to the new hook at once. See docs/webhooks.md.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..settings import Settings
from .job_actions import action_runtime
from .tables import write_json

__all__ = ["HOOK_ACTIONS", "hook_command"]

HOOK_ACTIONS = ("create", "list", "remove")


async def hook_command(
    settings: Settings, action: str, target: str, *, name: str | None = None, as_json: bool = False,
    base_url: str | None = None, out: TextIO | None = None, err: TextIO | None = None,
) -> int:
    """Do `action` on the hooks of job `target` (`remove`: on the hook named `target`); the exit code. `base_url`:
    the server as senders reach it (default: the settings' host and port)."""
    out, err = out or sys.stdout, err or sys.stderr
    runtime, _ = action_runtime(settings)
    async with runtime:
        hooks = runtime.service.hooks
        if action == "create":
            created = await hooks.create(target, name)
            base = (base_url or f"http://{settings.host}:{settings.port or 8765}").rstrip("/")
            url = f"{base}/hooks/{created.name}"
            if as_json:
                write_json({"name": created.name, "job_id": created.job_id, "url": url, "secret": created.secret}, out)
            else:
                out.write(f"url: {url}\nsecret: {created.secret}\n")
            err.write(f"Hook {created.name} runs job {created.job_id} on a signed POST (Standard Webhooks) to the "
                      "server's HTTP transport; the secret is shown this once: keep it now.\n")
        elif action == "list":
            names = await hooks.of_job(target)
            if as_json:
                write_json(names, out)
            else:
                out.writelines(f"{hook}\n" for hook in names)
        else:
            await hooks.remove(target)
            err.write(f"Hook {target} removed.\n")
    return 0
