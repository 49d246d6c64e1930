"""What every tool module of the server shares: errors answered as tool errors, the hints a tool carries,
and `Tool`, a tool ready to add (so that `add_tools` adds them in one explicit order)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from agentool_bridge import AgenToolError

from ..errors import DiskFullError, MissingScopeError, SchedulerError, is_disk_full
from ..models import SchedulerInput
from ..principals import Principal, acting_as
from .arguments import describe_argument_errors
from .auth import principal_of

__all__ = ["MAX_ERROR_MESSAGE", "READ_ONLY", "Tool", "acting_for", "hints", "keyword", "scheduler_input", "tool_errors"]

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


@dataclass(frozen=True)
class Tool:
    """A tool ready for `MCPServer.add_tool`: its function (with its parameters set) and what a client reads."""

    fn: Callable[..., Any]
    description: str
    annotations: ToolAnnotations
    scope: str
    """The scope a call needs (`principals`: read, write, run or admin); kind scopes are checked where the kind is
    known (the scheduler)."""
    name: str | None = None
    """Default: the function's name."""

    @property
    def tool_name(self) -> str:
        """The name the client sees."""
        return self.name or self.fn.__name__

    def add_to(self, mcp: MCPServer) -> None:
        """Register this tool on `mcp`, answering its text content as compact JSON."""
        mcp.add_tool(_compact(self.fn, self.scope, self.tool_name), name=self.name, description=self.description,
                     annotations=self.annotations)


@contextlib.contextmanager
def acting_for(ctx: Context | None, scope: str, name: str) -> Iterator[Principal]:
    """Run the block as the principal of the call of `ctx` (tool `name`), refused unless it holds `scope`."""
    with acting_as(principal_of(ctx)) as principal:
        if not principal.has(scope):
            raise ToolError(str(MissingScopeError(scope, name)))
        yield principal


def _compact(fn: Callable[..., Any], scope: str, name: str) -> Callable[..., Any]:
    """`fn` answering a model as a result whose text content is the structured content as compact JSON (the SDK
    would indent it, which a model reads as a quarter more characters for nothing), run as the call's principal,
    and refused unless it holds `scope` (`name`: the tool's)."""

    @functools.wraps(fn)
    async def answer(*args: Any, **kwargs: Any) -> Any:
        ctx = next((value for value in kwargs.values() if isinstance(value, Context)), None)
        with acting_for(ctx, scope, name):
            result = await fn(*args, **kwargs)
        if not isinstance(result, BaseModel):
            return result
        structured = result.model_dump(mode="json", by_alias=True)
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    return answer
