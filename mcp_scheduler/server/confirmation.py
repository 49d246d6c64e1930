"""The user's confirmation of what cannot be undone or reaches the host: cancel_job, stop_scheduler, a job that runs
a program (the `shell` kind) and an update_job that lets a job reach what it could not.

The question is asked by elicitation through the SDK's resolvers (`Annotated[T, Resolve(fn)]`), so it travels as
the protocol era wants it: a mid-call `elicitation/create` request on handshake-era connections, an
`InputRequiredResult` the client answers by retrying the call on 2026-07-28 ones. A client that cannot ask (no form
elicitation, or a stateless handshake-era connection) passes `confirm: true` once the user agreed, and is told so
in the error it gets without it. Declining or cancelling means nothing is done. `--no-confirm` turns the questions
off for unattended use; the CLI, the AgenTool face and jobs files are the operator and are never asked.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import AcceptedElicitation, Elicit, ElicitationResult, Resolve
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, Field

from agentool_bridge import AgenToolError
from agentool_bridge.errors import clip
from agentool_bridge.secrets import env_names

from ..errors import JobNotFoundError, SchedulerError
from ..models import JOB_ID_PATTERN
from ..principals import acting_as
from ..runtime import SchedulerRuntime
from .auth import principal_of
from .tooling import keyword

__all__ = ["CONFIRM", "CONFIRMED", "Confirmation", "Confirmations", "check_confirmed", "reach"]

CONFIRM = "confirm"
"""The tool argument of clients that cannot ask the user."""
CONFIRMED = "confirmed"
"""The parameter a resolver fills with the user's answer (not in the input schema)."""

SHELL = "shell"

INPUT_REQUIRED_VERSION = "2026-07-28"
"""From this revision on, a question travels in the call's answer (InputRequiredResult), on any connection."""

Question = Callable[[dict[str, Any]], Awaitable[str | None]]
"""What to ask the user before a call with these arguments, or None when there is nothing to confirm."""


class Confirmation(BaseModel):
    """The form the user answers."""

    confirm: bool = Field(default=True, title="Confirm", description="Yes, do it.")


def reach(agentool_name: str, input_data: Any) -> set[str]:
    """What a job of `agentool_name` with `input_data` may reach beyond the scheduler, in words: the program it
    runs and the variables it sets (shell), the hosts of the URLs it names, the secrets it reads, the MCP servers
    it uses."""
    found: set[str] = set()
    try:
        found.update(f"secret {name}" for name in env_names(input_data))
    except AgenToolError:
        pass  # a malformed reference: the job's own checks refuse it, in their words
    for text in _strings(input_data):
        if "://" in text:
            try:
                host = urlsplit(text.strip()).hostname
            except ValueError:
                continue
            if host:
                found.add(f"host {host}")
    if isinstance(input_data, dict):
        if agentool_name == SHELL:
            argv = input_data.get("argv")
            if isinstance(argv, list) and argv:
                found.add(f"program {argv[0]}")
            env = input_data.get("env")
            if isinstance(env, dict):
                found.update(f"variable {name}" for name in env)
        server = input_data.get("server")
        servers = input_data.get("servers")
        named = [server] if isinstance(server, str) else servers if isinstance(servers, list) else []
        found.update(f"MCP server {name}" for name in named if isinstance(name, str))
    return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _argv(input_data: Any) -> str:
    argv = input_data.get("argv") if isinstance(input_data, dict) else None
    return clip(" ".join(map(str, argv)), 200) if isinstance(argv, list) else "(no argv)"


class Confirmations:
    """The questions of the tools that need the user's word, over one runtime; `enabled` False (`--no-confirm`)
    asks nothing."""

    def __init__(self, runtime: SchedulerRuntime, *, enabled: bool) -> None:
        self._runtime = runtime
        self.enabled = enabled

    # ------------------------------------------------------------------ the parameters a tool adds

    def parameters(self, tool: str, arguments: Iterable[str], question: Question) -> list[inspect.Parameter]:
        """The `confirm` argument and the resolved `confirmed` parameter of `tool`, whose resolver reads these
        tool `arguments` and asks `question` of them."""
        resolver = self._resolver(tool, list(arguments), question)
        return [
            keyword(CONFIRM, Annotated[bool | None, Field(description="User agreed.")], None),
            keyword(CONFIRMED, Annotated[ElicitationResult[Confirmation], Resolve(resolver)]),
        ]

    def _resolver(self, tool: str, arguments: list[str], question: Question) -> Callable[..., Any]:
        enabled = self.enabled

        async def resolve(ctx: Context, **kw: Any) -> Elicit[Confirmation] | bool:
            if not enabled:
                return True
            confirm = bool(kw.pop(CONFIRM, False))
            with acting_as(principal_of(ctx)):  # the question names only a job the caller may see
                asked = await question(kw)
            if asked is None:
                return True
            if _can_ask(ctx):
                return Elicit(asked, Confirmation)
            if confirm:
                return True
            raise ToolError(
                f"Not done: this needs the user's confirmation ({asked}) and this client cannot ask for it (no "
                f"elicitation). Ask the user; if they agree, call {tool} again with the same arguments and "
                "confirm: true."
            )

        params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in [*arguments, CONFIRM]]
        resolve.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        resolve.__annotations__ = {"ctx": Context}
        resolve.__name__ = resolve.__qualname__ = f"confirm_{tool}"  # its key on the wire (request_state)
        return resolve

    # ------------------------------------------------------------------ the questions

    async def cancel(self, args: dict[str, Any]) -> str | None:
        """cancel_job: always (a job that does not exist is said so by the tool)."""
        job = await self._job(args.get("job_id"))
        if job is None:
            return None
        name = f" ({clip(job.job_name, 80)})" if job.job_name else ""
        return (
            f"Cancel job {clip(job.job_id, 128)}{name}, {job.agentool_name}, {clip(job.description, 120)}, for "
            "good? Its runs in progress stop. This cannot be undone."
        )

    async def stop(self, args: dict[str, Any]) -> str | None:
        """stop_scheduler: always."""
        return (
            "Stop the scheduler? No job runs until start_scheduler, and the runs in progress of every job are "
            "cancelled."
        )

    async def schedule(self, args: dict[str, Any]) -> str | None:
        """schedule_job: a job that runs a program."""
        if args.get("agentool_name") != SHELL:
            return None
        job_id = args.get("job_id") or args.get("job_name") or "a new job"
        return (
            f"Schedule {clip(str(job_id), 128)} to run the program {_argv(args.get('input_data'))} on this "
            f"machine, unattended ({args.get('schedule_type')} {clip(str(args.get('schedule')), 100)})?"
        )

    async def update(self, args: dict[str, Any]) -> str | None:
        """update_job: a job that runs a program gets a new program, arguments or environment, or a job may reach
        what it could not (hosts, secrets, variables, MCP servers)."""
        job = await self._job(args.get("job_id"))
        if job is None:
            return None
        kind = args.get("agentool_name") or job.agentool_name
        given = args.get("input_data")
        data = given if given is not None else job.input_data
        job_id = clip(job.job_id, 128)
        if kind == SHELL and (kind != job.agentool_name or data != job.input_data):
            return f"Change job {job_id} to run the program {_argv(data)} on this machine, unattended?"
        wider = sorted(reach(kind, data) - reach(job.agentool_name, job.input_data))
        if not wider:
            return None
        return f"Let job {job_id} reach what it could not: {clip(', '.join(wider), 300)}?"

    async def _job(self, job_id: Any) -> Any:
        if not isinstance(job_id, str) or not re.fullmatch(JOB_ID_PATTERN, job_id):
            return None  # the tool's own validation answers a malformed id
        try:
            job, _ = await self._runtime.service.get_job(job_id, history=0)
        except (JobNotFoundError, SchedulerError):
            return None  # the tool itself says what is wrong
        return job


def _can_ask(ctx: Context) -> bool:
    """True when the client declared form elicitation and the connection can carry the question."""
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None or (elicitation.form is None and elicitation.url is not None):
        return False
    version = ctx.request_context.protocol_version
    if version is not None and is_version_at_least(version, INPUT_REQUIRED_VERSION):
        return True
    return bool(ctx.session.can_send_request)


def check_confirmed(kw: dict[str, Any], what: str) -> None:
    """Take `confirm` and `confirmed` out of a tool's arguments; raise unless the user agreed to `what`."""
    kw.pop(CONFIRM, None)
    outcome = kw.pop(CONFIRMED, None)
    if isinstance(outcome, AcceptedElicitation) and (outcome.data is True or getattr(outcome.data, "confirm", False)):
        return
    answer = getattr(outcome, "action", "decline")
    answered = "cancelled the question" if answer == "cancel" else "declined"
    raise ToolError(f"Not done: the user {answered} ({what}). Nothing changed; do not retry unless the user asks.")
