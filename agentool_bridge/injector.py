"""The injector: run any registered AgenTool by name.

An injector owns one `AgenToolRegistry`. `get_injector()` returns the injector that is active in
the current context (see `AgenToolInjector.activate`), or else the process-default one; that is
how the seed API (`get_injector().run(name, data)`, `create_agentool(...)`) works in a program
with one runtime, while a program (or a test) can run several runtimes side by side.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel

from ._routing import annotate, coerce_output, run_direct, validate_input
from .errors import RefResolutionError
from .registry import AgenTool, AgenToolRegistry

__all__ = ["AgenToolInjector", "get_injector", "REF_PREFIX"]

REF_PREFIX = "!ref:"

Override = AgenTool | Callable[[dict[str, Any]], Any | Awaitable[Any]]


class AgenToolInjector:
    """Runs AgenTools by name: `await injector.run(name, input_data)`.

    The AgenTools themselves live in its `registry`; the injector adds test overrides and
    reference resolution. Tools that take a pydantic-ai `RunContext` run through the AgenTool's
    pydantic-ai Agent; plain tools are called directly after the same validation and routing,
    which skips the Agent's per-run overhead.
    """

    def __init__(self, registry: AgenToolRegistry | None = None) -> None:
        self.registry = registry if registry is not None else AgenToolRegistry()
        self._overrides: dict[str, Override] = {}

    def register(self, agentool: AgenTool) -> AgenTool:
        """Register an AgenTool in this injector's registry."""
        return self.registry.register(agentool)

    def get(self, name: str) -> AgenTool:
        """The registered AgenTool called `name` (raises `AgenToolNotFoundError`)."""
        return self.registry.get(name)

    def activate(self) -> _Activation:
        """`with injector.activate():` makes this injector the one `get_injector()` returns in this context
        (and in tasks started in it).

        `register_agentool` and `create_agentool` register into the active injector's registry, so
        toolkit factories that know nothing of runtimes register where the caller wants them.
        """
        return _Activation(self)

    def validate(self, name: str, input_data: Any) -> BaseModel:
        """Validate `input_data` for AgenTool `name` without running it."""
        return validate_input(self.get(name), input_data)

    async def check(self, name: str, input_data: Any) -> list[str]:
        """Validate `input_data` for AgenTool `name`, then run the AgenTool's own `check` on it, if it has one;
        return the check's warnings (what is accepted but may not work as meant).

        A scheduler calls this when a job is created or changed, so that what can be known then (an
        unknown remote tool, a disallowed executable) is refused then, not at the first run.
        """
        agentool = self.get(name)
        model = validate_input(agentool, input_data)
        if agentool.check is None:
            return []
        return list(await agentool.check(model) or ())

    async def run(self, name: str, input_data: Any) -> Any:
        """Run AgenTool `name` on `input_data` (a dict, a pydantic model or a JSON string).

        Returns the AgenTool's typed output model where it declares one, otherwise the parsed
        JSON value. Raises `AgenToolNotFoundError`, `AgenToolInputError` (with
        `UnknownOperationError`), or the tool's own exception with a note naming the AgenTool.
        """
        override = self._overrides.get(name)
        if override is not None and not isinstance(override, AgenTool):
            data = input_data
            if isinstance(data, BaseModel):
                data = data.model_dump()
            elif isinstance(data, str):
                data = json.loads(data)
            result = override(data)
            if inspect.isawaitable(result):
                result = await result
            return result
        agentool = override if isinstance(override, AgenTool) else self.get(name)
        model = validate_input(agentool, input_data)
        if not agentool.needs_agent:
            return await run_direct(agentool, model)
        operation = getattr(model, agentool.routing_config.operation_field)
        try:
            run = await agentool.agent.run(model.model_dump_json())
        except Exception as exc:
            annotate(exc, agentool, operation)
            raise
        output = run.output
        if agentool.output_type is None and isinstance(output, str):
            output = json.loads(output)
        return coerce_output(agentool, output)

    @contextmanager
    def override(
        self, overrides: Mapping[str, Override] | None = None, **by_name: Override
    ) -> Iterator[None]:
        """Temporarily replace AgenTools by name (for tests).

        A replacement is another `AgenTool`, or a callable (sync or async) that receives the input
        as a dict and returns the output.
        """
        replacements = {**(overrides or {}), **by_name}
        saved = {name: self._overrides.get(name) for name in replacements}
        self._overrides.update(replacements)
        try:
            yield
        finally:
            for name, previous in saved.items():
                if previous is None:
                    self._overrides.pop(name, None)
                else:
                    self._overrides[name] = previous

    def clear(self) -> None:
        """Forget every override; remove (and close) every registered AgenTool."""
        self._overrides.clear()
        self.registry.clear()

    async def resolve_refs(self, value: Any) -> Any:
        """Resolve `!ref:<kind>:<key>` strings anywhere in `value` (dicts, lists, strings).

        `kind` names an AgenTool with a `get` operation (such as `storage_kv` or `config`); the
        reference is replaced by the `value` it returns. Raises `RefResolutionError` for a
        malformed reference, an unknown kind or a missing key.
        """
        if isinstance(value, dict):
            return {k: await self.resolve_refs(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.resolve_refs(v) for v in value]
        if isinstance(value, str) and value.startswith(REF_PREFIX):
            return await self._resolve_one(value)
        return value

    async def _resolve_one(self, ref: str) -> Any:
        kind, sep, key = ref[len(REF_PREFIX) :].partition(":")
        if not sep or not kind or not key:
            raise RefResolutionError(f"Malformed reference {ref!r}: expected '!ref:<kind>:<key>'.")
        if kind not in self._overrides and not self.registry.exists(kind):
            raise RefResolutionError(
                f"Cannot resolve {ref!r}: no AgenTool {kind!r} is registered "
                f"(registered: {', '.join(self.registry.names()) or 'none'})."
            )
        try:
            output = await self.run(kind, {"operation": "get", "key": key})
        except Exception as exc:
            raise RefResolutionError(f"Cannot resolve {ref!r}: {exc}") from exc
        if isinstance(output, dict):  # an AgenTool without output_type, or a callable override
            success, data = output.get("success", True), output.get("data", output)
        else:
            success, data = getattr(output, "success", True), getattr(output, "data", output)
        if success is False or not isinstance(data, dict) or "value" not in data:
            raise RefResolutionError(f"Cannot resolve {ref!r}: {kind!r} has no value for key {key!r}.")
        return data["value"]


class _Activation:
    """The context manager of `AgenToolInjector.activate` (a class: schedulers enter one per run)."""

    __slots__ = ("_injector", "_token")

    def __init__(self, injector: AgenToolInjector) -> None:
        self._injector = injector

    def __enter__(self) -> AgenToolInjector:
        self._token = _ACTIVE.set(self._injector)
        return self._injector

    def __exit__(self, *exc_info: object) -> None:
        _ACTIVE.reset(self._token)


_ACTIVE: ContextVar[AgenToolInjector | None] = ContextVar("agentool_bridge_injector", default=None)
_DEFAULT = AgenToolInjector()
"""The process-default injector: the one module-global default of both packages, kept because the seed API
(`get_injector().run(...)`, `register_agentool(...)`, `create_scheduler_agent()` without a runtime) works in
a program that makes and activates no injector. The seed's scheduler runtime hangs off this instance (as the
backend of its `scheduler` AgenTool), not off a global of its own. The server, the CLI, the runner, the
benchmarks and the tests make injectors of their own (each `SchedulerRuntime` has one) and pass them in or
activate them; nothing of theirs reaches this one."""


def get_injector() -> AgenToolInjector:
    """The injector active in this context (`AgenToolInjector.activate`), else the process-default one."""
    return _ACTIVE.get() or _DEFAULT
