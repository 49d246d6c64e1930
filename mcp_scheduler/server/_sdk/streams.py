"""The MCP SDK adapter's transports (see the package's docstring): stdio and a Unix socket connection served through
the low-level server with streams of our own, so that lines the SDK cannot parse are answered."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
from mcp import types
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared._context_streams import ContextReceiveStream, ContextSendStream, create_context_streams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from agentool_bridge.errors import clip, clip_text

from ..answering import Answering, Owed, StdoutFile, claimed_stdout

__all__ = ["STDIN_CLOSED_GRACE", "run_connection", "run_stdio", "unparsable_message_reply"]

logger = logging.getLogger(__name__)


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
