"""Run ``tests/fakes/mcp_server.py`` over streamable HTTP in its own process, stopped by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port

SCRIPT = str(Path(__file__).parent / "mcp_server.py")


@contextlib.contextmanager
def serve_http(token: str | None = None) -> Iterator[str]:
    """Yields the server's MCP URL once it accepts connections (fails after 20 s)."""
    port = free_port()
    args = [sys.executable, SCRIPT, "http", "--port", str(port)]
    if token:
        args += ["--token", token]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
