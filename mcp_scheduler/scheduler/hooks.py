"""Inbound webhooks: hooks that run a job when a signed delivery arrives (`POST /hooks/<name>`, `server/webhooks.py`).

A hook belongs to a job and has a signing secret of its own (Standard Webhooks, `agentool_bridge.standard_webhooks`),
kept in the store so that every replica verifies with it; the secret is told once, when the hook is created.
Creating or removing one is a change of its job: it needs `scheduler:write` and the job kind's scope, sees only the
acting principal's jobs, and is audited. A delivery is accepted when it is signed by the secret, its timestamp is
within the tolerance, its hook is not over its rate and its id is new (ids are kept in the store for twice the
tolerance, so a replay sent to another replica is refused too); it then starts one run of the job, trigger
`webhook`, with the JSON body as `!trigger:body` (`runs/trigger_refs.py`), in the runner: a standby hands it over
through the store and answers once the request is committed (`HandOvers.hand_over`, hand_overs.py).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentool_bridge.standard_webhooks import TOLERANCE, new_secret, verify

from ..clocks import Clock
from ..errors import (
    InvalidArgumentError,
    JobNotFoundError,
    MissingScopeError,
    QuotaExceededError,
    WebhookReplayError,
)
from ..principals import LOCAL, WRITE, acting, acting_as, require_kind
from ..store import SchedulerStore
from .audit_log import AuditLog
from .extra_runs import ExtraRuns
from .replication import Replication

__all__ = ["BODY_LIMIT", "RATE", "CreatedHook", "Hooks"]

BODY_LIMIT = 256 * 1024
"""Most bytes of a delivery's body."""
RATE = (30, 60.0)
"""Deliveries one hook accepts per window of seconds (in each process)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class CreatedHook:
    """A new hook: its name, its job, and its secret (shown this once)."""

    name: str
    job_id: str
    secret: str


class Hooks:
    """The hooks of a scheduler's jobs: create, list and remove them, and accept deliveries."""

    def __init__(
        self, *, store: SchedulerStore, replication: Replication, extra: ExtraRuns, audit: AuditLog, clock: Clock
    ) -> None:
        self._store = store
        self._replication = replication
        self._extra = extra
        self._audit = audit
        self._clock = clock
        self._accepted: dict[str, deque[float]] = {}  # hook -> monotonic times of its accepted deliveries

    async def create(self, job_id: str, name: str | None = None) -> CreatedHook:
        """Create a hook that runs `job_id` (named `name`, or after the job with a random suffix); its secret is
        in the answer and nowhere else that anyone reads."""
        job = await self._writable(job_id, "creating a hook")
        name = name or f"{job_id[:40]}-{secrets.token_hex(4)}"
        if not _NAME.fullmatch(name):
            raise InvalidArgumentError(
                f"Hook name {name[:80]!r}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or "
                "digit (it is the last part of the hook's URL)."
            )
        secret = new_secret()
        audit = self._audit.entry("create_hook", job.job_id, hook=name)
        if not await self._store.add_hook(name, job.job_id, secret, self._clock.now().timestamp(), audit=audit):
            raise InvalidArgumentError(f"A hook named {name!r} exists already: choose another name.")
        return CreatedHook(name, job.job_id, secret)

    async def of_job(self, job_id: str) -> list[str]:
        """The names of `job_id`'s hooks."""
        job = await self._replication.find(job_id)
        return await self._store.hooks_of(job.job_id)

    async def remove(self, name: str) -> None:
        """Remove a hook (its deliveries are refused as an unknown hook's from now on)."""
        hook = await self._store.get_hook(name)
        if hook is None:
            raise InvalidArgumentError(
                f"There is no hook named {name[:80]!r}: `mcp-scheduler hook list JOB` shows a job's hooks."
            )
        try:
            await self._writable(hook.job_id, "removing a hook")
        except JobNotFoundError:  # the job is gone (or another's): only the operator removes such a hook
            if not acting().admin:
                raise
        await self._store.remove_hook(name, audit=self._audit.entry("remove_hook", hook.job_id, hook=name))

    async def _writable(self, job_id: str, what: str) -> Any:
        if not acting().has(WRITE):
            raise MissingScopeError(WRITE, what)
        job = await self._replication.find(job_id)
        require_kind(job.definition.agentool_name, what)
        return job

    async def deliver(self, name: str, headers: Mapping[str, str], body: bytes) -> str:
        """Accept a delivery to hook `name` and start its job's run; the run's id. Raises `JobNotFoundError` for an
        unknown hook or one whose job is gone, paused or completed (alike), `WebhookSignatureError` for a bad
        signature or timestamp, `QuotaExceededError` over the hook's rate, `WebhookReplayError` for an id seen
        already, `InvalidArgumentError` for a body that is not JSON."""
        hook = await self._store.get_hook(name)
        with acting_as(LOCAL):  # the hook's secret is the credential; the run acts as its job's owner
            job = None if hook is None else await self._replication.lookup(hook.job_id)
        if hook is None or job is None or job.state != "scheduled":
            raise JobNotFoundError(name)
        now = self._clock.now().timestamp()
        msg_id, _ = verify(hook.secret, headers, body, now=now)
        recent = self._accepted.setdefault(name, deque())
        moment = time.monotonic()
        while recent and recent[0] <= moment - RATE[1]:
            recent.popleft()
        if len(recent) >= RATE[0]:
            raise QuotaExceededError(
                f"Hook {name!r} accepted {RATE[0]} deliveries in the last {RATE[1]:g} s, the most it takes: send "
                "this one again later (with the same webhook-id; it was not run)."
            )
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            raise InvalidArgumentError("The body must be JSON (or empty).") from None
        if not await self._store.note_delivery(name, msg_id, now, now - 2 * TOLERANCE):
            raise WebhookReplayError(f"Delivery {msg_id[:80]!r} to hook {name!r} was accepted already: not run again.")
        recent.append(moment)
        return await self._extra.trigger(job, "webhook", {"body": data, "hook": name, "id": msg_id})
