"""Queues per owner: whose queues a call or a run uses, and the names it knows them by.

Without `scheduler:admin` a principal has queues of its own: the name it gives (`results`) is kept in its
namespace (`~token:alice/results`, spelled by `agentool_bridge.toolkits.queue.namespaces`), so that nobody else
reads, takes or lists them, and it sees its queues under the names it gave. Admins and `local` use the shared names
(as stored before queues had owners), see every stored name, others' namespaces included, and may address them by
it. A job's queues are its owner's (`job_namespace`): its result and error queues, and the `queue` kind in its runs
(the run context carries the namespace); the inbox is apart (per owner by the job each message is about).
`storage_kv` keys live in the same namespace (the kind reads it from the run context, `RunInfo.namespace`).
"""

from __future__ import annotations

from typing import Any

from agentool_bridge.toolkits.errors import InvalidNameError
from agentool_bridge.toolkits.queue import namespace_for, stored_name, used_name

from .errors import InvalidJobInputError
from .jobs import JobDefinition
from .principals import LOCAL, Principal, acting

__all__ = ["check_queues", "job_namespace", "job_queue", "namespace_of", "queue_for", "queue_seen",
           "target_namespace"]


def namespace_of(principal: Principal | None = None) -> str | None:
    """The queue namespace of `principal` (default: the acting one); None for admins and `local` (shared names)."""
    principal = principal or acting()
    return None if principal.admin else namespace_for(principal.subject)


def job_namespace(definition: JobDefinition) -> str | None:
    """The queue namespace of a job's runs: its owner's; None (shared) for the operator's, an admin's (as it was
    when it created the job), and jobs stored before jobs kept an owner."""
    owner = definition.owner
    if owner is None or owner == LOCAL.subject or definition.owner_admin:
        return None
    return namespace_for(owner)


def target_namespace(target: Any) -> str | None:
    """The queue namespace of a run of `target`: its job's (`job_namespace`), or for a run of no job (run_now of
    a job kind) its caller's."""
    return job_namespace(target) if isinstance(target, JobDefinition) else namespace_of()


def queue_for(name: str, principal: Principal | None = None) -> str:
    """The stored name of the queue `principal` (default: the acting one) calls `name`. Raises `InvalidNameError`
    for a name that reaches into a namespace (starts with `~`) from within one, or is too long for it."""
    return stored_name(namespace_of(principal), name)


def queue_seen(stored: str, principal: Principal | None = None) -> str | None:
    """The name `principal` (default: the acting one) knows the stored queue `stored` by, or None when it may not
    see that queue (not in its namespace)."""
    return used_name(namespace_of(principal), stored)


def job_queue(target: Any, name: str) -> str:
    """The stored name of the queue a job (a `JobDefinition`, or a run of no job) calls `name`: its result or error
    queue, or a queue a trigger of it follows; in the namespace of its runs (`target_namespace`)."""
    return stored_name(target_namespace(target), name)


def check_queues(target: Any) -> None:
    """Raise `InvalidJobInputError` if the result or error queue of `target` (a job, or a run of no job), or the
    queue its policy.on_message follows, cannot be kept in the namespace of its runs (`target_namespace`: too long
    for it)."""
    namespace = target_namespace(target)
    on_message = target.policy.on_message if isinstance(target, JobDefinition) else None
    named = {"result_queue": target.result_queue, "error_queue": target.error_queue,
             "policy.on_message.queue": on_message.queue if on_message is not None else None}
    for field, name in named.items():
        if name is not None:
            try:
                stored_name(namespace, name)
            except InvalidNameError as exc:
                raise InvalidJobInputError(f"{field}: {exc}.") from exc
