"""The `mcp` AgenTool: jobs list and call the tools of other MCP servers declared in the servers file.

The servers file (`--servers FILE`, Claude Desktop's `mcpServers` shape) names the servers; the
`MCPConnectionPool` holds the connections. `call_tool` checks the arguments against the remote tool's
input schema (JSON Schema) before calling, and a tool result flagged `isError` raises `MCPToolCallError`,
so the run is recorded as failed. What the other server says (its tool listing, a tool's output, its error
text) is outside content: results carry it labelled, `{"untrusted": true, "from": "MCP server 'x'", "content":
...}`, and errors quote it as untrusted text (see `agentool_bridge.untrusted`). When a job is scheduled,
`check` refuses an undeclared server, and, if the server answers within `check_timeout` seconds, an unknown
tool or arguments that do not fit; a server that does not answer then is accepted (it may be up when the job
runs) with a warning in the log.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, JsonValue, model_validator

from ...errors import clip, clip_text, nearest_names
from ...models import BaseOperationInput, RoutingConfig
from ...registry import AgenTool
from ...untrusted import escape, quote, untrusted
from .._common import Name, ToolkitOutput, quoted_summary, require_fields
from .errors import (
    MCPArgumentsError,
    MCPServerUnavailableError,
    MCPToolCallError,
    MCPToolNotFoundError,
    MCPToolTimeoutError,
)
from .pool import MCPConnectionPool

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ContentBlock, Tool

__all__ = ["AGENTOOL_NAME", "CHECK_TIMEOUT", "MCPInput", "MCPToolkit"]

AGENTOOL_NAME = "mcp"
CHECK_TIMEOUT = 10.0
"""Seconds a server has to answer when a job is scheduled; a server that does not is accepted."""
MAX_INLINE_DATA = 4096
"""Longest base64 data (image, audio, blob resource) or resource text kept in a result's `content`."""
_MAX_ERROR_TEXT = 2000
_MAX_LISTED_TOOLS = 50

logger = logging.getLogger(__name__)


class MCPInput(BaseOperationInput):
    """Call tools of other MCP servers declared in the scheduler's servers file (--servers): list a server's
    tools, or call one of them with arguments checked against its input schema."""

    operation: Literal["list_tools", "call_tool"] = Field(
        description="list_tools: the tools of `server`, with their input schemas. call_tool: call `tool` of "
        "`server` with `arguments`; a tool that reports an error fails the run."
    )
    server: Name = Field(description="The MCP server, by its name in the servers file (a key of `mcpServers`).")
    tool: Name | None = Field(
        default=None, description="call_tool: the name of the server's tool to call (list_tools shows them)."
    )
    arguments: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="call_tool: the tool's arguments, a JSON object that fits its input_schema. A string "
        "'!env:NAME' is replaced by that environment variable of the scheduler when the job runs (NAME must be a "
        "secret the operator allows with --secret NAME).",
    )
    timeout: float = Field(
        default=60.0, gt=0, le=86_400, description="call_tool: seconds the tool may take before the run fails."
    )

    @model_validator(mode="after")
    def check_required(self) -> MCPInput:
        """call_tool needs a tool."""
        require_fields(self, {"call_tool": ("tool",)})
        return self


def _tool_entry(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description or "", "input_schema": tool.input_schema}


def _find_tool(server: str, tools: list[Tool], name: str) -> Tool:
    for tool in tools:
        if tool.name == name:
            return tool
    names = sorted(t.name for t in tools)
    listed = ", ".join(escape(clip_text(n, 100)) for n in names[:_MAX_LISTED_TOOLS]) or "none"
    if len(names) > _MAX_LISTED_TOOLS:
        listed += f" and {len(names) - _MAX_LISTED_TOOLS} more"
    close = nearest_names(name, names)
    meant = f" Did you mean {' or '.join(escape(clip_text(n, 100)) for n in close)}?" if close else ""
    raise MCPToolNotFoundError(
        f"MCP server {server!r} has no tool {clip(name)}.{meant} Its tools (untrusted names): {listed}. "
        "Use operation 'list_tools' to see them with their input schemas."
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _problem(error: Any) -> tuple[str, str]:
    """(location, message) of one jsonschema error, without quoting the value (it may be a secret)."""
    path = ".".join(str(part) for part in ("arguments", *error.absolute_path))
    validator, expected, instance = error.validator, error.validator_value, error.instance
    if validator == "required":
        missing = [name for name in expected if isinstance(instance, dict) and name not in instance]
        if missing:
            return f"{path}.{missing[0]}", "is required"
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(name for name in instance if name not in known)
        close = nearest_names(extra[0], known) if extra else []
        meant = f" (did you mean {' or '.join(clip(name, 60) for name in close)}?)" if close else ""
        return path, f"unexpected argument(s): {', '.join(clip(name, 60) for name in extra)}{meant}"
    phrases = {
        "type": lambda: f"must be of type {' or '.join(expected) if isinstance(expected, list) else expected} "
        f"(got {_type_name(instance)})",
        "enum": lambda: f"must be one of {clip(expected)}",
        "const": lambda: f"must be {clip(expected)}",
        "minimum": lambda: f"must be >= {expected}",
        "maximum": lambda: f"must be <= {expected}",
        "exclusiveMinimum": lambda: f"must be > {expected}",
        "exclusiveMaximum": lambda: f"must be < {expected}",
        "minLength": lambda: f"must have at least {expected} characters",
        "maxLength": lambda: f"must have at most {expected} characters",
        "minItems": lambda: f"must have at least {expected} items",
        "maxItems": lambda: f"must have at most {expected} items",
        "pattern": lambda: f"must match the pattern {clip(expected)}",
    }
    phrase = phrases.get(validator)
    return path, phrase() if phrase is not None else f"does not satisfy the schema's {validator!r} rule"


def check_arguments(server: str, tool: Tool, arguments: dict[str, Any]) -> None:
    """Raise `MCPArgumentsError` if `arguments` do not fit the tool's input schema (JSON Schema).

    A schema that is itself invalid is not enforced (the server checks the arguments anyway).
    """
    import jsonschema
    from jsonschema.exceptions import SchemaError

    schema = tool.input_schema
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except SchemaError:
        logger.debug("MCP server %r: the input schema of tool %r is not a valid JSON Schema", server, tool.name)
        return
    problems = sorted(_problem(error) for error in validator_class(schema).iter_errors(arguments))
    if not problems:
        return
    listing = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:10])
    if len(problems) > 10:
        listing += f"; and {len(problems) - 10} more"
    schema_text = quote(json.dumps(schema, ensure_ascii=False), f"MCP server {server!r}", what="input schema",
                        limit=1000)
    raise MCPArgumentsError(
        f"The arguments do not fit the input schema of tool {tool.name!r} of MCP server {server!r}: {listing}. "
        f"Its {schema_text}",
        [{"loc": loc, "msg": msg, "type": "mcp_arguments"} for loc, msg in problems],
    )


def _content_json(block: ContentBlock) -> dict[str, Any]:
    """One content block as JSON; large binary data and resource texts are described rather than included."""
    data: dict[str, Any] = block.model_dump(mode="json", by_alias=True, exclude_none=True)
    holders = [data, data["resource"]] if isinstance(data.get("resource"), dict) else [data]
    for holder in holders:
        for key in ("data", "blob"):
            encoded = holder.get(key)
            if isinstance(encoded, str) and len(encoded) > MAX_INLINE_DATA:
                holder[key] = f"<{len(encoded) * 3 // 4} bytes of base64 data left out>"
                holder["size_bytes"] = len(encoded) * 3 // 4
        text = holder.get("text")
        if holder is not data and isinstance(text, str) and len(text) > MAX_INLINE_DATA:
            holder["text"] = clip_text(text, MAX_INLINE_DATA)
    return data


def _text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


class MCPToolkit:
    """The `mcp` AgenTool over a pool of connections to the servers of a servers file."""

    def __init__(self, connections: MCPConnectionPool, *, check_timeout: float = CHECK_TIMEOUT) -> None:
        self.connections = connections
        self.check_timeout = check_timeout

    async def list_tools(self, server: str) -> ToolkitOutput:
        """The tools of `server`: name, description and input schema of each, labelled as the server's words."""
        tools = await self.connections.list_tools(server)
        entries = [_tool_entry(tool) for tool in tools]
        return ToolkitOutput(
            operation="list_tools",
            message=f"MCP server {server!r} has {len(tools)} tool(s).",
            data={"server": server, "tools": untrusted(entries, f"MCP server {server!r}"), "count": len(tools)},
        )

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any], time_limit: float) -> ToolkitOutput:
        """Call `tool` of `server` after checking `arguments` against its input schema.

        Its output (`structured_content`, `text`, `content`) is labelled as untrusted content of the server.
        Raises `MCPToolCallError`, quoting the server's text as untrusted, if the tool reports an error.
        """
        remote = _find_tool(server, await self.connections.list_tools(server), tool)
        check_arguments(server, remote, arguments)
        result = await self.connections.call_tool(server, tool, arguments, time_limit=time_limit)
        text = _text_of(result)
        if result.is_error:
            said = quote(text, f"MCP server {server!r}", what="error text", limit=_MAX_ERROR_TEXT) if text else ""
            raise MCPToolCallError(
                f"Tool {tool!r} of MCP server {server!r} reported an error" + (f"; {said}" if said else " (no text).")
            )
        origin = f"MCP server {server!r}, tool {tool!r}"
        structured = result.structured_content
        return ToolkitOutput(
            operation="call_tool",
            message=f"Called tool {tool!r} of MCP server {server!r}.",
            data={
                "server": server,
                "tool": tool,
                "is_error": False,
                "structured_content": None if structured is None else untrusted(structured, origin),
                "text": untrusted(text, origin),
                "content": untrusted([_content_json(block) for block in result.content], origin),
            },
            summary=quoted_summary(f"tool {tool!r}", text if text else structured, origin),
        )

    async def check(self, model: MCPInput) -> None:
        """At schedule time: the server is declared and its entry usable; for call_tool, if the server answers
        within `check_timeout`, the tool exists and the arguments fit its input schema."""
        self.connections.check_server(model.server)
        if model.operation != "call_tool" or model.tool is None:
            return
        try:
            tools = await self.connections.list_tools(model.server, time_limit=self.check_timeout)
        except (MCPServerUnavailableError, MCPToolTimeoutError) as exc:
            logger.warning("Accepting an mcp job although its server does not answer now (it may later): %s", exc)
            return
        check_arguments(model.server, _find_tool(model.server, tools, model.tool), dict(model.arguments))

    def agentool(self) -> AgenTool:
        """The `mcp` AgenTool (not registered); closing it closes the pool's connections."""

        async def list_tools(server: str) -> ToolkitOutput:
            return await self.list_tools(server)

        async def call_tool(server: str, tool: str, arguments: dict[str, Any], time_limit: float) -> ToolkitOutput:
            return await self.call_tool(server, tool, arguments, time_limit)

        async def check(model: Any) -> None:
            await self.check(model)

        routing = RoutingConfig(
            operation_map={
                "list_tools": ("list_tools", lambda m: {"server": m.server}),
                "call_tool": (
                    "call_tool",
                    lambda m: {"server": m.server, "tool": m.tool, "arguments": dict(m.arguments),
                               "time_limit": m.timeout},
                ),
            }
        )
        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=MCPInput,
            routing_config=routing,
            tools=(list_tools, call_tool),
            output_type=ToolkitOutput,
            tags=("builtin", "mcp"),
            examples=(
                {"operation": "list_tools", "server": "files"},
                {"operation": "call_tool", "server": "files", "tool": "list_directory",
                 "arguments": {"path": "/tmp"}, "timeout": 30},
            ),
            on_close=self.connections.close,
            backend=self,
            check=check,
        )
