"""The MCP SDK adapter: the only package that uses parts of `mcp` (2.x) beyond its public API (streams.py: the
stdio and socket transports).

- `resources/subscribe`, `resources/unsubscribe` and `logging/setLevel` for handshake-era clients:
  `MCPServer` does not serve them, and the SDK's advice for re-providing spec methods that the
  2026-07-28 revision removed is the low-level `Server.add_request_handler`, reached through
  `MCPServer._lowlevel_server`.
- The connection (per client) behind a request context: `ServerSession._connection`.
- `subscriptions/listen` served by our handler (`listen.Listen`), which also pushes the tasks extension's
  `notifications/tasks`: registered in place of the SDK's `ListenHandler` through the low-level
  `Server.add_request_handler` (the SDK's handler knows only its own event kinds). The SDK types
  `ServerSession.send_notification` for its own notifications only; it dumps whatever notification model it is
  given, so ours goes through it as a `Notification` of our method (`send_stream_notification`).
- Advertising `resources.listChanged` to handshake-era clients: the low-level server's
  `create_initialization_options` is given `NotificationOptions(resources_changed=True)`.
- Output schemas published in a compact form: the tool manager's registered tools
  (`MCPServer._tool_manager`, `fn_metadata.output_schema`).
- Closed input schemas: an unknown argument (a typo such as `timezon`) is refused, not silently
  dropped; each registered tool's `parameters` gets `additionalProperties: false` and its
  `fn_metadata.arg_model` (the pydantic model the SDK validates arguments with) a subclass that
  refuses unknown keys with a message naming them.
- Logging left to the host: `MCPServer.__init__` calls the SDK's `configure_logging`, which builds a rich
  handler (importing rich where it is installed) for `logging.basicConfig` to drop when the root logger already
  has handlers, as in the `mcp-scheduler` command; `sdk_logging_unless_configured` skips that call then.
- Extensions added after the server's own tools (so that tools/list keeps its order): `MCPServer(extensions=...)`
  applies them first, through `MCPServer._apply_extension`, which this adapter calls later instead.
- Answering what the stdio transport cannot parse: `mcp.server.stdio.stdio_server` hands a line it
  cannot parse (bad JSON, JSON nested deeper than pydantic's 200 levels, not a JSON-RPC message) to
  the server as an exception, which the SDK drops: the client waits forever. `run_stdio` serves the
  low-level server (`MCPServer._lowlevel_server`) through a stream of its own
  (`mcp.shared._context_streams`) and answers those lines with a JSON-RPC error. `run_connection` serves
  a Unix socket connection (the background runner's) the same way, with a line reader and writer of its own
  that hand the session the same streams `stdio_server` would. Both tell `answering.Answering` what their
  session still owes its client; stdio writes through a stdout of its own (`answering.StdoutFile`), so that a
  stopping server knows when the last answer is flushed.
- A layer in front of the streamable HTTP endpoint behind the bearer auth (`wrap_authenticated_endpoint`): the
  endpoint's Starlette `Route.app` is the SDK's `RequireAuthMiddleware` (its `resource_metadata_url` named in
  the 401s), wrapped in place; the app's `AuthenticationMiddleware` has set the request's `user` by then.

`check_mcp_sdk()` checks all of these; a test runs it, so that an SDK upgrade that changes them
fails with a message naming what changed. The supported range is pinned in pyproject.toml.
"""

from __future__ import annotations

import difflib
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mcp import types
from mcp.server.extension import Extension
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from agentool_bridge.errors import clip
from agentool_bridge.versions import require_version

from .streams import run_connection, run_stdio, unparsable_message_reply

__all__ = [
    "SUPPORTED",
    "add_request_handler",
    "serve_listen",
    "send_stream_notification",
    "advertise_resource_list_changed",
    "apply_extension",
    "check_mcp_sdk",
    "close_input_schemas",
    "connection_of",
    "map_output_schemas",
    "run_connection",
    "run_stdio",
    "sdk_logging_unless_configured",
    "unparsable_message_reply",
]

logger = logging.getLogger(__name__)

SUPPORTED = ((2, 3), (3, 0))  # [lowest, first unsupported) versions of `mcp`, as pinned in pyproject.toml

Handler = Callable[[Any, Any], Awaitable[Any]]


class _ExtensionNotification(types.Notification[dict[str, Any], str]):
    """A notification of a method the SDK does not know (an extension's)."""


def connection_of(ctx: Any) -> Any:
    """The per-client connection of a request context (`ServerSession` objects are per request)."""
    return ctx.session._connection


def add_request_handler(mcp: MCPServer, method: str, params_type: type[Any], handler: Handler) -> None:
    """Serve a request method that `MCPServer` leaves out (a handshake-era spec method)."""
    mcp._lowlevel_server.add_request_handler(method, params_type, handler)


def serve_listen(mcp: MCPServer, handler: Handler) -> None:
    """Serve `subscriptions/listen` with `handler` instead of the SDK's `ListenHandler`."""
    mcp._lowlevel_server.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams, handler)


async def send_stream_notification(ctx: Any, method: str, params: dict[str, Any], request_id: Any) -> None:
    """Send notification `method` on the response stream of the request `request_id` (a listen stream)."""
    notification = _ExtensionNotification(method=method, params=params)
    await ctx.session.send_notification(notification, related_request_id=request_id)


def advertise_resource_list_changed(mcp: MCPServer) -> None:
    """Tell handshake-era clients (in `initialize`) that `notifications/resources/list_changed` is sent."""
    low = mcp._lowlevel_server
    low.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        low.create_initialization_options, NotificationOptions(resources_changed=True)
    )


@contextmanager
def sdk_logging_unless_configured() -> Iterator[None]:
    """While inside, `MCPServer(...)` configures logging only if the root logger has no handlers: otherwise
    `logging.basicConfig` would drop the SDK's handler anyway, after importing rich to build it (measured: 8% of
    what this server adds to a bare `MCPServer`'s cold start)."""
    module: Any = sys.modules[MCPServer.__module__]
    sdk_configure = module.configure_logging

    def configure_logging(*args: Any, **kwargs: Any) -> None:
        if not logging.getLogger().handlers:
            sdk_configure(*args, **kwargs)

    module.configure_logging = configure_logging
    try:
        yield
    finally:
        module.configure_logging = sdk_configure


def apply_extension(mcp: MCPServer, extension: Extension) -> None:
    """Add `extension`'s tools and resources to `mcp` and advertise it, after the tools `mcp` already has."""
    mcp._apply_extension(extension)


def map_output_schemas(mcp: MCPServer, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Replace each registered tool's output schema by `transform(schema)`."""
    for tool in mcp._tool_manager.list_tools():
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = transform(tool.fn_metadata.output_schema)


def map_input_schemas(mcp: MCPServer, transform: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Replace each registered tool's input schema (as listed; arguments are still validated by its model)."""
    for tool in mcp._tool_manager.list_tools():
        tool.parameters = transform(tool.parameters)


Describe = Callable[[list[Any], dict[str, Any]], str]
"""Words a tool's argument errors (pydantic's `errors()`) given its published input schema."""


def close_input_schemas(mcp: MCPServer, describe: Describe) -> None:
    """Make every registered tool refuse arguments it does not take, naming them (and the closest known one),
    and answer any argument error in the words of `describe` (the SDK would quote pydantic, with its links)."""
    for tool in mcp._tool_manager.list_tools():
        tool.parameters["additionalProperties"] = False
        tool.fn_metadata.arg_model = _closed(tool, describe)


def unknown_arguments_message(tool: str, unknown: list[str], known: list[str]) -> str:
    """What to tell a caller who sent arguments that `tool` does not take."""
    shown = [clip(name, 60) for name in unknown[:5]]
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    hints = []
    for name in unknown[:5]:
        close = difflib.get_close_matches(name[:100], known, n=1)
        if close:
            hints.append(f"{clip(name, 60)} -> {close[0]!r}")
    hint = f" Did you mean: {', '.join(hints)}?" if hints else ""
    noun = "argument" if len(unknown) == 1 else "arguments"
    takes = ", ".join(known) if known else "no arguments"
    return f"Unknown {noun} {', '.join(shown)}{more} for {tool}.{hint} {tool} takes: {takes}."


def _closed(tool: Any, describe: Describe) -> type[Any]:
    """`tool`'s argument model, refusing unknown keys and wording every error with `describe`.

    The SDK answers a `ValidationError` from the argument model with its text, so the worded errors
    travel as one: a custom error type (no documentation link) without the input echoed.
    """
    model: type[Any] = tool.fn_metadata.arg_model
    name: str = tool.name
    known = sorted(field.alias or field_name for field_name, field in model.model_fields.items())
    accepted = frozenset(known)

    class Closed(model):  # type: ignore[valid-type,misc]
        # Built at the tool's first call: building 17 validators up front would delay the first tools/list.
        model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

        @model_validator(mode="before")
        @classmethod
        def _refuse_unknown(cls, data: Any) -> Any:
            if isinstance(data, dict):
                unknown = [key for key in data if key not in accepted]
                if unknown:
                    message = unknown_arguments_message(name, [str(k) for k in unknown], known)
                    raise PydanticCustomError("unknown_argument", "{message}", {"message": message})
            return data

        @classmethod
        def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().model_validate(obj, *args, **kwargs)
            except ValidationError as exc:
                text = describe(exc.errors(), tool.parameters)  # read now: the published schema is final
                error = PydanticCustomError("invalid_arguments", "{message}", {"message": text})
                raise ValidationError.from_exception_data(
                    name, [{"type": error, "loc": (), "input": None}], hide_input=True
                ) from None

    Closed.__name__ = Closed.__qualname__ = model.__name__
    Closed.__module__ = model.__module__
    return Closed


def check_mcp_sdk() -> None:
    """Raise `RuntimeError` naming what changed if the installed `mcp` lacks what this adapter uses."""
    installed = require_version("mcp", SUPPORTED, "mcp-scheduler's SDK adapter")
    probe = MCPServer("probe")

    @probe.tool()
    def typed() -> types.EmptyResult:
        """A tool with an output schema."""
        return types.EmptyResult()

    problems = []
    low = getattr(probe, "_lowlevel_server", None)
    if low is None or not callable(getattr(low, "add_request_handler", None)):
        problems.append("MCPServer._lowlevel_server.add_request_handler")
    elif not callable(getattr(low, "create_initialization_options", None)):
        problems.append("Server.create_initialization_options")
    manager = getattr(probe, "_tool_manager", None)
    tools = manager.list_tools() if manager is not None and hasattr(manager, "list_tools") else []
    if not tools or not hasattr(getattr(tools[0], "fn_metadata", None), "output_schema"):
        problems.append("MCPServer._tool_manager.list_tools()[i].fn_metadata.output_schema")
    elif not isinstance(getattr(tools[0].fn_metadata, "arg_model", None), type) or not issubclass(
        tools[0].fn_metadata.arg_model, BaseModel
    ):
        problems.append("MCPServer._tool_manager.list_tools()[i].fn_metadata.arg_model")
    elif not isinstance(getattr(tools[0], "parameters", None), dict):
        problems.append("MCPServer._tool_manager.list_tools()[i].parameters")
    if not callable(getattr(probe, "_apply_extension", None)) or not isinstance(getattr(low, "extensions", None), dict):
        problems.append("MCPServer._apply_extension, Server.extensions")
    if not callable(getattr(low, "run", None)):
        problems.append("Server.run (the low-level server loop run_stdio drives)")
    if "configure_logging" not in MCPServer.__init__.__code__.co_names or not callable(
        getattr(sys.modules[MCPServer.__module__], "configure_logging", None)
    ):
        problems.append("MCPServer.__init__ calling its module's configure_logging")
    if "_connection" not in ServerSession.__init__.__code__.co_names:  # set as self._connection in __init__
        problems.append("ServerSession._connection")
    served = getattr(low, "get_request_handler", None)
    if not callable(served) or served("subscriptions/listen") is None:
        problems.append("Server.get_request_handler('subscriptions/listen') (the SDK's listen handler we replace)")
    notify = getattr(ServerSession, "_notify", None)
    if "_notify" not in ServerSession.send_notification.__code__.co_names or "model_dump" not in getattr(
        getattr(notify, "__code__", None), "co_names", ()
    ):
        problems.append("ServerSession.send_notification dumping the notification it is given (notifications/tasks)")
    if problems:
        raise RuntimeError(f"mcp {installed} changed what the SDK adapter relies on: {', '.join(problems)}.")


def wrap_authenticated_endpoint(app: Any, path: str, wrap: Callable[[Any, str | None], Any]) -> None:
    """Put `wrap(endpoint, resource_metadata_url)` in front of the endpoint at `path` of the streamable HTTP `app`
    that the SDK built with a token verifier: after authentication (the ASGI scope's `user` is the SDK's
    `AuthenticatedUser` for an accepted token), before `RequireAuthMiddleware` answers 401 to the others."""
    from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
    from starlette.routing import Route

    for route in app.router.routes:
        if isinstance(route, Route) and route.path == path and isinstance(route.app, RequireAuthMiddleware):
            metadata = route.app.resource_metadata_url
            route.app = wrap(route.app, None if metadata is None else str(metadata))
            return
    raise RuntimeError(f"The MCP SDK's app has no endpoint at {path} behind RequireAuthMiddleware: mcp changed "
                       "how streamable_http_app() builds its routes.")
