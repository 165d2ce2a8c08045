"""The HTTP and WebSocket hardening middlewares, in their order (docs/security.md)."""

from __future__ import annotations

from fastapi import FastAPI

from warbler.config import Settings
from warbler.security.csrf import CookieWebSocketAuth
from warbler.security.headers import SecurityHeaders
from warbler.security.proxy import RequestContext


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add after every other middleware: the last added runs first. A request meets
    ``RequestContext`` (client IP and scheme, the audit ``request_context``), then
    ``SecurityHeaders`` (which needs the scheme for HSTS, and so also covers answers of the
    middlewares inside it, such as BodyLimit's 413), then ``CookieWebSocketAuth``. All are
    pure ASGI: nothing is buffered, streaming and WebSockets pass through."""
    app.add_middleware(CookieWebSocketAuth)
    app.add_middleware(SecurityHeaders, hsts_max_age=settings.hsts_max_age_seconds)
    app.add_middleware(RequestContext, trusted_proxies=settings.trusted_proxies)
