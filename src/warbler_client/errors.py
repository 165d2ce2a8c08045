"""The SDK's exceptions: a typed API error, and a connection error for an unreachable server."""

from __future__ import annotations

from typing import Any


class WarblerError(Exception):
    """Base class of every exception the SDK raises on purpose."""


class WarblerAPIError(WarblerError):
    """The server answered with an error body ``{"error": {"code", "message", "details"}}``.

    ``status`` is the HTTP status (or the status a WebSocket close stands for), ``code`` the
    stable machine-readable code (``not_found``, ``unauthenticated``, …).
    """

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details or {}

    @classmethod
    def from_response(cls, status: int, body: Any, fallback: str) -> WarblerAPIError:
        """Parse the typed error body; a body that is not one (a proxy's HTML page) still
        gives a usable error with code ``http_<status>``."""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            details = error.get("details")
            return cls(
                status,
                error["code"],
                str(error.get("message", "")),
                details if isinstance(details, dict) else {},
            )
        return cls(status, f"http_{status}", fallback[:500] or f"HTTP {status}")


class WarblerConnectionError(WarblerError):
    """The server could not be reached (after the retries the call allows)."""
