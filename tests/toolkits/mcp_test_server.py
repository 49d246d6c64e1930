"""A small real MCP server for the tests of the `mcp` and `agent` toolkits.

`python tests/toolkits/mcp_test_server.py` serves over stdio; `... --http PORT` serves streamable
HTTP on 127.0.0.1:PORT at /mcp. Tools: `add`, `echo`, `fail` (always an error), `pid` (the
server's process id, to tell whether a connection was reused), `env` (a variable of its
environment, to check what a servers file passes), `trace_context` (the W3C trace context the request carried
in `params._meta`) and `read_text` (a file's text: what a test changes between two calls).
"""

import argparse
import os

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("mcp-test-server", instructions="Test tools for mcp-scheduler's toolkits.")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def fail(reason: str = "as asked") -> str:
    """Always fail, with the reason given."""
    raise ToolError(f"failed {reason}")


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def env(name: str) -> str | None:
    """The value of an environment variable of the server process (None if unset)."""
    return os.environ.get(name)


@server.tool()
def read_text(path: str) -> str:
    """The text of the file at `path` (empty if there is none)."""
    try:
        with open(path) as file:
            return file.read()
    except FileNotFoundError:
        return ""


@server.tool()
def trace_context(ctx: Context) -> dict[str, str]:
    """The traceparent and tracestate the request carried in its `_meta` (none: empty)."""
    meta = dict(ctx.request_context.meta or {})
    return {name: str(meta[name]) for name in ("traceparent", "tracestate") if name in meta}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=None, metavar="PORT")
    args = parser.parse_args()
    if args.http is None:
        server.run()
    else:
        server.run(transport="streamable-http", host="127.0.0.1", port=args.http, streamable_http_path="/mcp")


if __name__ == "__main__":
    main()
