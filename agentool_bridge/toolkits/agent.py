"""The `agent` AgenTool: run a prompt through a pydantic-ai Agent, optionally with the tools of MCP servers.

The model is a pydantic-ai model name (`anthropic:claude-sonnet-4-5`, `openai:gpt-5`, `test`) from the
job or, by default, from `ToolkitConfig.model` (`--model` / `MCP_SCHEDULER_MODEL`); the provider reads its
API key from the environment. The tools of the servers a job names (from the servers file) are offered
to the model as `<server>__<tool>`, called through the host's shared `MCPConnections`. With an
`output_schema` the answer is a JSON object matching it. The answer and the tool calls are labelled as
outside content (`{"untrusted": true, "from": "model '...'", "content": ...}`, see `agentool_bridge.untrusted`):
a model that read a web page or a tool's output may repeat what it was told there.

pydantic-ai is imported only when a job is checked or run (`_agent_run`), never when this module is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, JsonValue, field_validator

from ..errors import AgenToolInputError, clip, clip_text
from ..models import BaseOperationInput, RoutingConfig
from ..registry import AgenTool
from ..untrusted import untrusted
from ._common import Name, ToolkitOutput, quoted_summary
from .config import ToolkitConfig
from .errors import ToolkitError
from .mcp import MCPConnections, UnknownServerError

if TYPE_CHECKING:
    from pydantic_ai.models import Model

__all__ = ["AGENTOOL_NAME", "AgentInput", "AgentModelError", "AgentRunError", "AgentToolkit"]

logger = logging.getLogger(__name__)

AGENTOOL_NAME = "agent"
DEFAULT_MAX_REQUESTS = 10
_REF_PREFIX = "!ref:"


class AgentModelError(ToolkitError, ValueError):
    """No model was given and there is no default, or the model cannot be built (unknown, SDK or API key missing)."""


class AgentRunError(ToolkitError, RuntimeError):
    """The agent run failed: usage limit reached, output not matching the schema, the provider or a server failed."""


def _check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if schema.get("type") != "object":
        raise ValueError(
            'the schema must describe a JSON object (\'"type": "object"\' at the top); wrap other '
            'values, e.g. {"type": "object", "properties": {"items": {"type": "array"}}, "required": ["items"]}'
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(top level)"
        problem = clip_text(exc.message, 300)
        raise ValueError(f"not a valid JSON schema at {where}: {problem}") from None
    return schema


class AgentInput(BaseOperationInput):
    """Ask an LLM to do a task, optionally with tools of MCP servers; returns its answer, usage and tool calls."""

    operation: Literal["run"] = Field(description="'run': answer the prompt (calling tools as needed) and stop.")
    prompt: str = Field(min_length=1, description="The task for the model in this run.")
    model: str | None = Field(
        default=None,
        description="The model, as a pydantic-ai model name: 'anthropic:claude-sonnet-4-5', 'openai:gpt-5', ... "
        "(its API key comes from the scheduler's environment), or 'test' (offline, free, calls no tools: for "
        "trying a job out). Default: the scheduler's --model.",
    )
    instructions: str | None = Field(
        default=None, description="System instructions for the model: its role, rules and answer format."
    )
    servers: list[Name] = Field(
        default_factory=list,
        description="MCP servers (names from the scheduler's servers file) whose tools the model may call; "
        "their tools are named '<server>__<tool>'. Default: no tools.",
    )
    output_schema: dict[str, JsonValue] | None = Field(
        default=None,
        description="A JSON schema of an object that the answer must match; the output is then that JSON object "
        "instead of text. Default: a text answer.",
    )
    max_requests: int = Field(
        default=DEFAULT_MAX_REQUESTS,
        ge=1,
        le=100,
        description="Most model requests in this run (every round of tool calls is one); reaching it fails the run.",
    )
    temperature: float | None = Field(
        default=None, ge=0, le=2, description="Sampling temperature. Default: the model's."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens in each model response. Default: the model's."
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must not be blank")
        return value

    @field_validator("servers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"servers names {', '.join(map(repr, duplicates))} more than once")
        return value

    @field_validator("output_schema")
    @classmethod
    def _usable_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_schema(value)


def _is_ref(value: object) -> bool:
    return isinstance(value, str) and value.startswith(_REF_PREFIX)


class AgentToolkit:
    """Runs `agent` jobs: builds the model, offers the tools of the named MCP servers, runs one prompt.

    `config` gives the default model (`ToolkitConfig.model`). `connections` are the host's open MCP
    connections (an `MCPConnections`, such as the scheduler's pool); None means that no MCP servers are
    available, so a job naming one is refused. `models` are named pydantic-ai models (a `FunctionModel`
    in tests, a configured model when embedding) that a job's `model` can name; they win over model names.
    """

    def __init__(
        self,
        config: ToolkitConfig | None = None,
        *,
        connections: MCPConnections | None = None,
        models: Mapping[str, Model] | None = None,
    ) -> None:
        self.config = config or ToolkitConfig()
        self.connections = connections
        self._named: dict[str, Model] = dict(models or {})
        self._built: dict[str, Model] = {}

    def model_name(self, requested: str | None) -> str:
        """The model a job uses: its own, else the default; `AgentModelError` if there is neither."""
        name = requested or self.config.model
        if not name:
            raise AgentModelError(
                "No model for the agent: give the job a model (such as 'anthropic:claude-sonnet-4-5' or "
                "'openai:gpt-5'), or start the scheduler with --model (or MCP_SCHEDULER_MODEL)."
            )
        return name

    def resolve_model(self, requested: str | None) -> tuple[str, Model]:
        """The model's name and the pydantic-ai model (built once per name); `AgentModelError` if it cannot be built."""
        name = self.model_name(requested)
        named = self._named.get(name)
        if named is not None:
            return name, named
        model = self._built.get(name)
        if model is None:
            from ._agent_run import build_model

            model = self._built[name] = build_model(name)
        return name, model

    def check_servers(self, servers: Sequence[str]) -> None:
        """Raise `UnknownServerError` unless every server is declared in the servers file of the connections."""
        if not servers:
            return
        if self.connections is None:
            raise UnknownServerError(
                f"MCP server {clip(servers[0])} is not available: this scheduler has no MCP servers for agent jobs. "
                "Start it with --servers FILE (the mcpServers shape of Claude Desktop), or leave servers out."
            )
        for server in servers:
            self.connections.servers.get(server)

    async def check(self, request: AgentInput) -> None:
        """Schedule-time check: the model can be built, the servers are declared, the output schema is usable.

        Values that are `!ref:` references are resolved only at run time, so they are checked then.
        """
        if not _is_ref(request.model):
            self.resolve_model(request.model)
        self.check_servers([name for name in request.servers if not _is_ref(name)])
        if request.output_schema is not None:
            from ._agent_run import check_output_schema

            try:
                check_output_schema(request.output_schema)
            except Exception as exc:
                reason = clip_text(str(exc).strip().rstrip("."), 300)
                message = f"output_schema cannot be used for structured output: {reason}"
                raise AgenToolInputError(
                    f"Invalid input for AgenTool {AGENTOOL_NAME!r}: {message}",
                    [{"loc": "output_schema", "msg": message, "type": "output_schema"}],
                ) from exc

    async def run(self, request: AgentInput) -> ToolkitOutput:
        """Run the prompt to a final answer; the output, the usage and the tool calls as JSON (the output and the
        tool calls labelled as untrusted content)."""
        name, model = self.resolve_model(request.model)
        self.check_servers(request.servers)
        from ._agent_run import run_agent

        logger.debug("agent run: model %s, servers %s", name, request.servers)
        result = await run_agent(
            model,
            request.prompt,
            instructions=request.instructions,
            connections=self.connections,
            servers=request.servers,
            output_schema=request.output_schema,
            max_requests=request.max_requests,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
        )
        usage = result.usage
        return ToolkitOutput(
            operation="run",
            message=f"Model {name} answered after {usage['requests']} request(s) and "
            f"{len(result.tool_calls)} tool call(s).",
            data={
                "output": untrusted(result.output, f"model {name!r}"),
                "model": name,
                "usage": usage,
                "tool_calls": untrusted(result.tool_calls, f"model {name!r} and the MCP servers it called"),
                "messages": result.messages,
            },
            summary=quoted_summary("agent", result.output, f"model {name!r}"),
        )

    def agentool(self) -> AgenTool:
        """The `agent` AgenTool over this toolkit (not registered)."""

        async def run(request: AgentInput) -> ToolkitOutput:
            return await self.run(request)

        async def check(request: Any) -> None:
            await self.check(request)

        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=AgentInput,
            routing_config=RoutingConfig(operation_map={"run": ("run", lambda m: {"request": m})}),
            tools=(run,),
            output_type=ToolkitOutput,
            tags=("builtin", "agent", "llm"),
            examples=(
                {"operation": "run", "prompt": "Summarise today's open incidents in three bullet points.",
                 "model": "anthropic:claude-sonnet-4-5", "servers": ["tracker"]},
                {"operation": "run", "prompt": "Rate the sentiment of: 'the release went smoothly'",
                 "output_schema": {"type": "object", "properties": {"score": {"type": "number"}},
                                   "required": ["score"]}},
            ),
            check=check,
            backend=self,
        )
