"""What every tool module of the server shares: errors answered as tool errors, the hints a tool carries,
and `Tool`, a tool ready to add (so that `add_tools` adds them in one explicit order)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from agentool_bridge import AgenToolError

from ..errors import DiskFullError, MissingScopeError, SchedulerError, is_disk_full
from ..models import SchedulerInput
from ..principals import Principal, acting_as, kind_scope
from .arguments import describe_argument_errors
from .auth import principal_of

__all__ = [
    "MAX_ERROR_MESSAGE",
    "READ_ONLY",
    "Need",
    "Tool",
    "acting_for",
    "hints",
    "keyword",
    "kind_needs",
    "missing",
    "scheduler_input",
    "stored_kind_needs",
    "tool_errors",
]

logger = logging.getLogger(__name__)

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
"""Hints that are the spec's defaults are left out (destructiveHint and idempotentHint only count for a tool that
is not read-only); the client reads the same hints in fewer characters."""


def hints(*, destructive: bool = False, idempotent: bool = False, open_world: bool = False) -> ToolAnnotations:
    """The hints of a tool that changes something, leaving out those that are the spec's defaults."""
    # Spec defaults: readOnlyHint false, destructiveHint true, idempotentHint false, openWorldHint true.
    return ToolAnnotations(
        destructive_hint=None if destructive else False,
        idempotent_hint=True if idempotent else None,
        open_world_hint=None if open_world else False,
    )


MAX_ERROR_MESSAGE = 4000
"""Longest error message a tool answers (the sources clip what they quote; this is the last guard)."""


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "Invalid arguments: " + describe_argument_errors(exc.errors(), {})
    message = str(exc)
    if len(message) > MAX_ERROR_MESSAGE:
        message = f"{message[:MAX_ERROR_MESSAGE]}... (message clipped)"
    return message


@contextlib.contextmanager
def tool_errors(tool: str, database: str | None = None) -> Iterator[None]:
    """Answer the errors the project raises on purpose with their message (the caller can act on it), and a full
    disk under the toolkits' stores (on `database`) as `DiskFullError`; anything else is a bug or a server fault:
    logged with its traceback and answered as an internal error."""
    try:
        yield
    except ToolError:
        raise
    except (SchedulerError, AgenToolError, ValidationError) as exc:
        raise ToolError(_describe_error(exc)) from exc
    except Exception as exc:
        if database and is_disk_full(exc):
            raise ToolError(str(DiskFullError(database))) from exc
        logger.exception("Internal error in tool %s", tool)
        raise ToolError(
            f"Internal error in {tool} ({type(exc).__name__}): not a problem with the arguments; the server "
            "log has the details. Retrying may help."
        ) from exc


def scheduler_input(operation: str, **fields: Any) -> SchedulerInput:
    """The `SchedulerInput` of one tool call (validated as the AgenTool face validates it)."""
    return SchedulerInput(operation=operation, **fields)  # type: ignore[arg-type]


def keyword(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    """A keyword parameter that is not a `SchedulerInput` field (for `with_parameters`)."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


Need = tuple[str, str]
"""A scope a call needs, and what asks for it in words (`schedule_job of job kind 'http'`)."""
Needs = Callable[[Mapping[str, Any]], Awaitable[list[Need]]]
"""The scopes a call needs beyond its tool's, from its arguments (and the stored job they name), as the acting
principal sees them. The HTTP transport reads them as sent (not yet validated): a `Needs` counts only values of the
type the tool takes (`True`, not `"true"`), and the tool path, which reads them validated, refuses the others."""
JobKinds = Callable[[str], Awaitable[str | None]]
"""The kind of a stored job the acting principal may see, None for any other id (`SchedulerService.job_kind`)."""


def _kind_need(kind: str, tool: str) -> list[Need]:
    scope = kind_scope(kind)
    return [] if scope is None else [(scope, f"{tool} of job kind {kind!r}")]


def kind_needs(kinds: Container[str], tool: str, *, stored: JobKinds | None = None) -> Needs:
    """The scope of the job kind a call of `tool` names in `agentool_name`, when it is one of `kinds` (the
    registered ones: any other is refused as unknown) and reaches beyond the process. With `stored` (run_now), a
    `job_id` that names a job the caller may see runs that job's kind instead, whatever `agentool_name` says."""

    async def needs(arguments: Mapping[str, Any]) -> list[Need]:
        if stored is not None and (kind := await _stored_kind(stored, arguments)) is not None:
            return _kind_need(kind, tool)
        kind = arguments.get("agentool_name")
        return _kind_need(kind, tool) if isinstance(kind, str) and kind in kinds else []

    return needs


def stored_kind_needs(stored: JobKinds, tool: str, *, also: Needs | None = None) -> Needs:
    """The scope of the kind of the stored job a call of `tool` names in `job_id` (one the caller may see: another's
    answers "not found" on both paths), and what `also` says (update_job: the kind it changes the job to)."""

    async def needs(arguments: Mapping[str, Any]) -> list[Need]:
        kind = await _stored_kind(stored, arguments)
        found = [] if kind is None else _kind_need(kind, tool)
        return found + ([] if also is None else await also(arguments))

    return needs


async def _stored_kind(stored: JobKinds, arguments: Mapping[str, Any]) -> str | None:
    job_id = arguments.get("job_id")
    return await stored(job_id) if isinstance(job_id, str) and job_id else None


def missing(principal: Principal, needs: Iterable[Need]) -> list[Need]:
    """The needs `principal` does not hold (`scheduler:admin` holds them all)."""
    return [need for need in needs if not principal.has(need[0])]


@dataclass(frozen=True)
class Tool:
    """A tool ready for `MCPServer.add_tool`: its function (with its parameters set) and what a client reads."""

    fn: Callable[..., Any]
    description: str
    annotations: ToolAnnotations
    scope: str
    """The scope a call needs (`principals`: read, write, run or admin)."""
    name: str | None = None
    """Default: the function's name."""
    also: Needs | None = None
    """The scopes a call needs beyond `scope`, by its arguments and the stored job they name (the scheduler checks
    a stored job's kind too, for the faces without tools)."""

    @property
    def tool_name(self) -> str:
        """The name the client sees."""
        return self.name or self.fn.__name__

    async def needs(self, arguments: Mapping[str, Any]) -> list[Need]:
        """Every scope a call with `arguments` needs, as the acting principal sees the stored job they name: what
        the tool path refuses without, and what the HTTP transport's step-up challenge names (`step_up.py`), from
        this one answer."""
        needed = [(self.scope, self.tool_name)]
        if self.also is not None:
            needed += [need for need in await self.also(arguments) if need[0] != self.scope]
        return needed

    def add_to(self, mcp: MCPServer) -> None:
        """Register this tool on `mcp`, answering its text content as compact JSON."""
        mcp.add_tool(_compact(self.fn, self.needs), name=self.name, description=self.description,
                     annotations=self.annotations)


@contextlib.contextmanager
def acting_for(ctx: Context | None, scope: str, name: str) -> Iterator[Principal]:
    """Run the block as the principal of the call of `ctx` (tool `name`), refused unless it holds `scope`."""
    with _acting_for(ctx, [(scope, name)]) as principal:
        yield principal


@contextlib.contextmanager
def _acting_for(ctx: Context | None, needs: Sequence[Need]) -> Iterator[Principal]:
    with acting_as(principal_of(ctx)) as principal:
        for scope, what in missing(principal, needs)[:1]:
            raise ToolError(str(MissingScopeError(scope, what)))
        yield principal


def _compact(fn: Callable[..., Any], needs: Needs) -> Callable[..., Any]:
    """`fn` answering a model as a result whose text content is the structured content as compact JSON (the SDK
    would indent it, which a model reads as a quarter more characters for nothing), run as the call's principal,
    and refused unless it holds what `needs` says the call's arguments need."""

    @functools.wraps(fn)
    async def answer(*args: Any, **kwargs: Any) -> Any:
        ctx = next((value for value in kwargs.values() if isinstance(value, Context)), None)
        with acting_as(principal_of(ctx)) as principal:  # first: the stored job's kind is read as it may see it
            for scope, what in missing(principal, await needs(kwargs))[:1]:
                raise ToolError(str(MissingScopeError(scope, what)))
            result = await fn(*args, **kwargs)
        if not isinstance(result, BaseModel):
            return result
        structured = result.model_dump(mode="json", by_alias=True)
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    return answer
