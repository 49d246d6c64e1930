"""The MCP SDK adapter: the only module that uses parts of `mcp` (2.x) beyond its public API.

- `resources/subscribe`, `resources/unsubscribe` and `logging/setLevel` for handshake-era clients:
  `MCPServer` does not serve them, and the SDK's advice for re-providing spec methods that the
  2026-07-28 revision removed is the low-level `Server.add_request_handler`, reached through
  `MCPServer._lowlevel_server`.
- The connection (per client) behind a request context: `ServerSession._connection`.
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

`check_mcp_sdk()` checks all of these; a test runs it, so that an SDK upgrade that changes them
fails with a message naming what changed. The supported range is pinned in pyproject.toml.
"""

from __future__ import annotations

import difflib
import functools
import logging
import math
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import anyio.abc
from mcp import types
from mcp.server.extension import Extension
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.shared._context_streams import ContextReceiveStream, ContextSendStream, create_context_streams
from mcp.shared.message import SessionMessage
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from agentool_bridge.errors import clip, clip_text
from agentool_bridge.versions import require_version

from .answering import Answering, Owed, StdoutFile, claimed_stdout

__all__ = [
    "SUPPORTED",
    "add_request_handler",
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

Handler = Callable[[Any, Any], Awaitable[types.EmptyResult]]


def connection_of(ctx: Any) -> Any:
    """The per-client connection of a request context (`ServerSession` objects are per request)."""
    return ctx.session._connection


def add_request_handler(mcp: MCPServer, method: str, params_type: type[Any], handler: Handler) -> None:
    """Serve a request method that `MCPServer` leaves out (a handshake-era spec method)."""
    mcp._lowlevel_server.add_request_handler(method, params_type, handler)


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


STDIN_CLOSED_GRACE = 10.0  # seconds the requests still being handled get to answer once stdin has closed


async def run_stdio(mcp: MCPServer, answering: Answering | None = None) -> None:
    """Serve `mcp` over stdin/stdout until stdin closes, answering lines it cannot parse with a JSON-RPC error.

    When stdin closes, the requests still being handled get up to STDIN_CLOSED_GRACE seconds to answer
    (the SDK would cancel them at once): a client that writes its last request and closes its end
    still gets the answer. `answering`: where the session tells what it still owes its client (for shutdown).
    """
    with (answering or Answering()).session() as owed, claimed_stdout() as stdout:
        async with stdio_server(stdout=StdoutFile(stdout, owed)) as (read_stream, write_stream):  # type: ignore[arg-type]
            await _serve_session(mcp, read_stream, write_stream, owed, STDIN_CLOSED_GRACE)


async def run_connection(mcp: MCPServer, stream: anyio.abc.ByteStream, answering: Answering | None = None) -> None:
    """Serve one MCP session over a byte stream (a Unix socket connection) as `run_stdio` does over stdin/stdout:
    newline-delimited JSON-RPC, both protocol eras, lines it cannot parse answered. Once the other end stops
    sending (half-close, or gone) the calls in flight go on to their end (their runs are not lost) and are
    answered if the other end still reads; the session then ends."""
    with (answering or Answering()).session() as owed:
        async with stream, _line_streams(stream, owed) as (read_stream, write_stream):
            await _serve_session(mcp, read_stream, write_stream, owed, None)


@asynccontextmanager
async def _line_streams(
    stream: anyio.abc.ByteStream, owed: Owed
) -> AsyncIterator[tuple[ContextReceiveStream[SessionMessage | Exception], ContextSendStream[SessionMessage]]]:
    """The message streams of `stdio_server`, over a byte stream: one JSON-RPC message per line, UTF-8 (bytes
    that are not are replaced, as stdio reads them), a final line without its newline read at the end."""
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)

    async def parse(line: bytes) -> None:
        try:
            message = types.jsonrpc_message_adapter.validate_json(line.decode("utf-8", "replace"), by_name=False)
        except Exception as exc:
            await read_writer.send(exc)
            return
        await read_writer.send(SessionMessage(message))

    async def read_lines() -> None:
        async with read_writer:
            pending = b""
            while True:
                try:
                    chunk = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    await parse(line.removesuffix(b"\r"))
            if pending:
                await parse(pending)

    written = anyio.Event()

    async def write_lines() -> None:
        try:
            async with write_reader:
                async for message in write_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    try:
                        await stream.send(text.encode() + b"\n")
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        logger.debug("A client went away before its answer was written")
                    finally:
                        owed.wrote()
        finally:
            written.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_lines)
        tg.start_soon(write_lines)
        yield read_stream, write_stream
        # The session closed its write stream: the writer ends once the last answer is sent (a client that
        # reads nothing more gets the grace time); the reader may still wait for bytes that will not come.
        with anyio.move_on_after(STDIN_CLOSED_GRACE):
            await written.wait()
        tg.cancel_scope.cancel()


async def _serve_session(
    mcp: MCPServer,
    read_stream: ContextReceiveStream[SessionMessage | Exception],
    write_stream: ContextSendStream[SessionMessage],
    owed: Owed,
    grace: float | None,
) -> None:
    """Serve one session of the low-level server over the message streams of a line transport; once the input
    ends, the requests in flight get `grace` seconds (None: all the time they take) to be answered."""
    low = mcp._lowlevel_server
    forward, parsed = create_context_streams[SessionMessage | Exception](0)
    answers, to_stdout = anyio.create_memory_object_stream[SessionMessage](0)

    async def sort_out() -> None:
        async with forward:
            async for item in read_stream:
                if not isinstance(item, Exception):
                    owed.asked(item.message)
                    await forward.send(item)
                    continue
                reply = unparsable_message_reply(item)
                if reply is not None:
                    owed.handing()
                    await write_stream.send(SessionMessage(reply))
            with anyio.move_on_after(grace if grace is not None else math.inf):
                await owed.until(lambda: not owed.ids)

    async def write_out() -> None:
        async with to_stdout:
            async for message in to_stdout:
                owed.handing()
                await write_stream.send(message)
                owed.answered(message.message)

    async with anyio.create_task_group() as writing:
        writing.start_soon(write_out)
        async with anyio.create_task_group() as reading:
            reading.start_soon(sort_out)
            try:
                await low.run(parsed, answers, low.create_initialization_options())
            finally:
                await answers.aclose()
                reading.cancel_scope.cancel()
        # Nothing is sent any more (the SDK may keep clones of the stream open, so it never ends by
        # itself): let the answers handed over reach the client, then stop.
        with anyio.move_on_after(STDIN_CLOSED_GRACE):
            await owed.until(lambda: not owed.writing)
        writing.cancel_scope.cancel()
    await write_stream.aclose()  # ends the transport's writer


_LEADING_ID = re.compile(r'\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')


def unparsable_message_reply(exc: Exception) -> types.JSONRPCError | None:
    """The JSON-RPC error answering a line the transport could not parse (None for a blank line).

    The request id is read from the start of the line when the JSON itself cannot be parsed (too deep,
    truncated), from the parsed object otherwise; without one the answer has id null, as JSON-RPC says.
    """
    if not isinstance(exc, ValidationError):
        logger.warning("The stdio transport reported %s: %s", type(exc).__name__, clip(str(exc)))
        return types.JSONRPCError(
            jsonrpc="2.0", id=None, error=types.ErrorData(code=types.PARSE_ERROR, message="Parse error")
        )
    errors = exc.errors()
    raw = next((e.get("input") for e in errors if e["type"] == "json_invalid"), None)
    if isinstance(raw, str | bytes):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            return None
        match = _LEADING_ID.match(text)
        request_id: Any = None
        if match:
            token = match.group(1)
            request_id = token[1:-1] if token.startswith('"') else int(token)
        reason = errors[0]["msg"]
        if "recursion limit" in reason:
            reason += " (JSON nested deeper than 200 levels is not accepted)"
        message = f"Parse error: {clip_text(reason)}. Send one JSON-RPC message (a JSON object) per line."
        logger.warning("Answered a line that is not JSON (%s)", clip_text(reason))
        return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=types.PARSE_ERROR,
                                                                                     message=message))
    request = next((e.get("input") for e in errors if isinstance(e.get("input"), dict)), None)
    request_id = request.get("id") if isinstance(request, dict) else None
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        request_id = None
    if request_id is None and isinstance(request, dict) and "method" in request:
        logger.warning("Dropped a malformed notification: %s", clip(str(exc)))
        return None  # a notification gets no answer, even a malformed one
    logger.warning("Answered an invalid JSON-RPC message: %s", clip(str(exc)))
    return types.JSONRPCError(
        jsonrpc="2.0",
        id=clip(request_id) if isinstance(request_id, str) and len(request_id) > 200 else request_id,
        error=types.ErrorData(code=types.INVALID_REQUEST, message="Invalid Request: not a JSON-RPC 2.0 message."),
    )


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
    if problems:
        raise RuntimeError(f"mcp {installed} changed what the SDK adapter relies on: {', '.join(problems)}.")
