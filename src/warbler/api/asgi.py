"""Small helpers for the handlers that work on raw ASGI scopes (the gateway, the send
shortcut)."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> str | None:
    """The first header called ``name`` (lower case), as Starlette's ``Headers.get`` reads it,
    without building a ``Headers`` (whose copy of the list a WebSocket would keep for its
    life)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
