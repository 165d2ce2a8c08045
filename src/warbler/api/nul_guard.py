"""No text with a NUL character (U+0000) gets in: PostgreSQL cannot store it in text (it
refuses the statement) and SQLite would keep it, so both stores answer the same 4xx.

JSON bodies are checked by the ``Request`` schema base (``api/schemas.py``); this middleware
checks the path and the query string; a form field that still carries one reaches the
database, whose refusal ``api/errors.py`` turns into the same 400.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from warbler.api.errors import error_response

MESSAGE = "text may not contain the NUL character (U+0000)"


def has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            has_nul(scope.get("raw_path") or scope["path"].encode())
            or has_nul(scope.get("query_string", b""))
        ):
            response = error_response(400, "invalid_request", MESSAGE)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
