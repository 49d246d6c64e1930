"""The pydantic-ai side of the `agent` toolkit: models, the MCP toolset and one run.

Imported only when an `agent` job is checked or run (pydantic-ai is heavy; cold start must not pay for it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai import Agent, ModelRetry, RunContext, StructuredDict, ToolFailed, UsageLimits
from pydantic_ai.exceptions import AgentRunError as PydanticAIRunError
from pydantic_ai.exceptions import UnexpectedModelBehavior, UsageLimitExceeded, UserError
from pydantic_ai.models import Model, infer_model
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
from pydantic_core import SchemaValidator, core_schema

from ..errors import clip, clip_text
from ..untrusted import quote
from .agent import AgentModelError, AgentRunError
from .errors import ToolkitError
from .mcp import MCPConnections

__all__ = ["AgentResult", "MCPServersToolset", "ToolCall", "build_model", "check_output_schema", "run_agent"]

RESULT_PREVIEW = 500
"""Most characters of a tool's result (or arguments) kept in the run's record of tool calls."""

OUTPUT_RETRIES = 2
"""How often the model may retry a tool call with bad arguments, or an answer that does not match output_schema."""

_TOOL_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ARGS_VALIDATOR = SchemaValidator(core_schema.dict_schema(keys_schema=core_schema.str_schema()))


@dataclass
class ToolCall:
    """One call of an MCP tool the model made."""

    tool: str
    server: str
    name: str
    args: Any
    result: str
    is_error: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "server": self.server,
            "name": self.name,
            "args": self.args,
            "result": self.result,
            "is_error": self.is_error,
        }


def build_model(name: str) -> Model:
    """The pydantic-ai model for a model name (`anthropic:...`, `openai:...`, `test`); API keys from the environment.

    `test` is pydantic-ai's offline TestModel, made to call no tools: by default it would call every tool
    of the job's servers with made-up arguments, which on a real server could write or delete things.
    """
    if name == "test":
        from pydantic_ai.models.test import TestModel

        return TestModel(call_tools=[])
    try:
        return infer_model(name)
    except (UserError, ImportError, ValueError) as exc:
        reason = clip_text(str(exc).strip(), 400).rstrip(".")
        raise AgentModelError(
            f"Model {clip(name)} cannot be used: {reason}. Model names look like 'anthropic:claude-sonnet-4-5' "
            "or 'openai:gpt-5'; API keys are read from the scheduler's environment (ANTHROPIC_API_KEY, "
            "OPENAI_API_KEY, ...)."
        ) from exc


def check_output_schema(schema: dict[str, Any]) -> None:
    """Raise `UserError` if pydantic-ai cannot use `schema` as structured output (recursive `$ref`s, say)."""
    StructuredDict(dict(schema))


def _preview(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return clip_text(text, RESULT_PREVIEW)


def _short_args(args: dict[str, Any]) -> Any:
    text = json.dumps(args, ensure_ascii=False, default=str)
    return args if len(text) <= RESULT_PREVIEW else clip_text(text, RESULT_PREVIEW)


def _result_content(result: Any) -> Any:
    """What the model sees of an MCP tool result.

    Its structured content when the other blocks are only text (they then repeat it as JSON; a lone
    `result` key, how servers wrap a plain value, is unwrapped), else the text blocks, other kinds of
    block described in a line.
    """
    blocks = list(result.content)
    structured = result.structured_content
    if structured is not None and all(getattr(block, "type", None) == "text" for block in blocks):
        if isinstance(structured, dict) and list(structured) == ["result"]:
            return structured["result"]
        return structured
    parts: list[str] = []
    for block in blocks:
        text = getattr(block, "text", None)
        if isinstance(text, str):
            parts.append(text)
        else:
            kind = getattr(block, "mime_type", None) or getattr(block, "uri", None)
            parts.append(f"[{block.type} content{f' ({kind})' if kind else ''} not shown]")
    return "\n".join(parts)


class MCPServersToolset(AbstractToolset[Any]):
    """The tools of some MCP servers, named `<server>__<tool>`, called through shared `MCPConnections`.

    One instance serves one run: it lists each server's tools once and records every call.
    """

    def __init__(self, connections: MCPConnections, servers: Sequence[str]) -> None:
        self._connections = connections
        self._servers = list(servers)
        self._tools: dict[str, tuple[str, str, ToolDefinition]] | None = None
        self.calls: list[ToolCall] = []

    @property
    def id(self) -> str | None:
        return "mcp-servers"

    async def _load(self) -> dict[str, tuple[str, str, ToolDefinition]]:
        tools: dict[str, tuple[str, str, ToolDefinition]] = {}
        for server in self._servers:
            try:
                listed = await self._connections.list_tools(server)
            except ToolkitError:
                raise
            except Exception as exc:
                said = quote(str(exc), f"MCP server {server!r}", what="error text")
                raise AgentRunError(f"Cannot list the tools of MCP server {server!r}; {said}") from exc
            for tool in listed:
                name = _TOOL_NAME_UNSAFE.sub("_", f"{server}__{tool.name}")[:64]
                if name in tools:
                    raise AgentRunError(
                        f"Two MCP tools get the same tool name {name!r} (server {server!r}, tool "
                        f"{clip(tool.name, 100)}); rename a server in the servers file."
                    )
                schema = dict(tool.input_schema) if tool.input_schema else {"type": "object", "properties": {}}
                definition = ToolDefinition(
                    name=name,
                    description=tool.description or tool.title or f"Tool {tool.name} of MCP server {server}.",
                    parameters_json_schema=schema,
                )
                tools[name] = (server, tool.name, definition)
        return tools

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        if self._tools is None:
            self._tools = await self._load()
        return {
            name: ToolsetTool(toolset=self, tool_def=definition, max_retries=ctx.max_retries,
                              args_validator=_ARGS_VALIDATOR)
            for name, (_, _, definition) in self._tools.items()
        }

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        assert self._tools is not None
        server, remote, _ = self._tools[name]
        call = ToolCall(name, server, remote, _short_args(tool_args), "", False)
        self.calls.append(call)  # now, so that the record keeps the order the model asked in
        try:
            result = await self._connections.call_tool(server, remote, tool_args)
        except ToolkitError:
            raise
        except Exception as exc:
            said = quote(str(exc), f"MCP server {server!r}", what="error text")
            raise AgentRunError(f"Calling tool {remote!r} of MCP server {server!r} failed; {said}") from exc
        content = _result_content(result)
        call.result, call.is_error = _preview(content), bool(result.is_error)
        if result.is_error:
            # Not ModelRetry: the model sees the failure and adapts, without spending its retry budget.
            message = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
            raise ToolFailed(message or f"Tool {remote!r} failed without saying why.")
        return content


@dataclass
class AgentResult:
    """What one run produced, as plain values."""

    output: Any
    usage: dict[str, int]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0


def _schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    # The location holds the answer's own keys and the message quotes its values: the model's words.
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    return quote(f"{where}: {error.message}", "the model's answer", what="validation text", limit=300)


async def run_agent(
    model: Model,
    prompt: str,
    *,
    instructions: str | None,
    connections: MCPConnections | None,
    servers: Sequence[str],
    output_schema: Mapping[str, Any] | None,
    max_requests: int,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> AgentResult:
    """Run `prompt` through a pydantic-ai Agent on `model` with the tools of `servers`.

    Raises `AgentRunError` saying why if the run fails (a usage limit, the provider, a server).
    """
    settings = ModelSettings()
    if temperature is not None:
        settings["temperature"] = temperature
    if max_tokens is not None:
        settings["max_tokens"] = max_tokens
    toolset = MCPServersToolset(connections, servers) if servers and connections is not None else None
    schema = dict(output_schema) if output_schema is not None else None
    agent: Agent[None, Any] = Agent(
        model,
        output_type=StructuredDict(dict(schema)) if schema is not None else str,
        instructions=instructions,
        toolsets=[toolset] if toolset is not None else None,
        name="mcp-scheduler-agent",
        retries=OUTPUT_RETRIES,
    )
    problems: list[str] = []
    if schema is not None:

        @agent.output_validator
        def _matches_schema(value: Any) -> Any:
            problem = _schema_problem(schema, value)
            if problem is not None:
                problems.append(problem)
                raise ModelRetry(f"The output does not match the required JSON schema: {problem}")
            return value

    try:
        result = await agent.run(
            prompt,
            usage_limits=UsageLimits(request_limit=max_requests),
            model_settings=settings or None,
        )
    except UsageLimitExceeded as exc:
        reason = exc.message.split(". ")[0]
        raise AgentRunError(
            f"The agent stopped at its usage limit ({reason}) before a final answer: raise max_requests "
            f"(now {max_requests}) if the task needs more model requests."
        ) from exc
    except UnexpectedModelBehavior as exc:
        if problems and "output" in exc.message:
            raise AgentRunError(
                f"The answer did not match output_schema after {len(problems)} attempt(s); the last problem: "
                f"{problems[-1]}"
            ) from exc
        said = quote(exc.message, "the model run", what="error text", limit=600)
        body = f" Its {quote(exc.body, 'the model provider', what='response', limit=300)}" if exc.body else ""
        raise AgentRunError(f"The model misbehaved; {said}.{body}") from exc
    except (PydanticAIRunError, UserError) as exc:
        said = quote(str(exc), "the model run", what="error text", limit=600)
        raise AgentRunError(f"The agent run failed; {said}") from exc
    usage = result.usage
    return AgentResult(
        output=result.output,
        usage={
            "requests": usage.requests,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "tool_calls": usage.tool_calls,
        },
        tool_calls=[call.as_json() for call in (toolset.calls if toolset is not None else [])],
        messages=len(result.all_messages()),
    )
