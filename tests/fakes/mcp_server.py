"""A tiny real MCP server with two tools, for the MCP tool-source tests.

Run it over stdio (the MCP client starts it as a subprocess)::

    python tests/fakes/mcp_server.py stdio

or over streamable HTTP on 127.0.0.1::

    python tests/fakes/mcp_server.py http --port 8765 [--token SECRET]

With ``--token`` (HTTP) every request must carry ``Authorization: Bearer SECRET`` or gets a
401, so a test can prove the client sent the header it was given. ``greet`` starts its answer
with the ``GREETING`` environment variable, so a test can prove a stdio server got its env.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("warbler-test-tools")


@server.tool(description="Add two integers and return the sum.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Greet someone by name (any language).")
def greet(name: str) -> str:
    return f"{os.environ.get('GREETING', 'Hello')}, {name}!"


def _require_token(app: Any, token: str) -> Any:
    """An ASGI wrapper that refuses HTTP requests without the bearer token."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    if args.transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    if args.token:
        app = _require_token(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
