"""The baseline: a bare `MCPServer` with one no-op tool, served over stdio (`python -m bench.bare_server`).

Kept as small as a hello-world server so that the benchmarks compare against the SDK's own floor.
"""

from mcp.server.mcpserver import MCPServer

mcp = MCPServer("bare")


@mcp.tool()
def noop() -> str:
    """Do nothing."""
    return "ok"


if __name__ == "__main__":
    mcp.run()
