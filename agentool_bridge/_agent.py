"""Build the pydantic-ai `Agent` of an AgenTool, driven by a deterministic model (no LLM).

This module imports pydantic-ai; it is imported only when an Agent is first needed.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from ._routing import coerce_output, validate_input
from .registry import AgenTool


def _json_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in kwargs.items()}


def build_agent(agentool: AgenTool) -> Agent[Any, Any]:
    """A pydantic-ai Agent that validates the JSON prompt, calls the routed tool, returns its output."""

    def route(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        for part in messages[-1].parts:
            if isinstance(part, ToolReturnPart):
                # Same coercion as the direct path: typed output model, otherwise a JSON value.
                content = coerce_output(agentool, part.content)
                if isinstance(content, BaseModel):
                    content = content.model_dump(mode="json")
                if info.output_tools:
                    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, content)])
                return ModelResponse(parts=[TextPart(json.dumps(content))])
            if isinstance(part, UserPromptPart):
                prompt = part.content if isinstance(part.content, str) else json.dumps(part.content)
                model = validate_input(agentool, prompt)
                tool_name, kwargs = agentool.routing_config.route(model)
                return ModelResponse(parts=[ToolCallPart(tool_name, _json_args(kwargs))])
        raise RuntimeError(f"AgenTool {agentool.name!r}: unexpected message sequence")

    return Agent(
        FunctionModel(route, model_name=f"agentool:{agentool.name}"),
        tools=list(agentool.tools),
        output_type=agentool.output_type or str,
        name=agentool.name,
        instructions=agentool.description or None,
    )
