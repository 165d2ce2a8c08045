"""Security headers on every HTTP response, never overriding one the route set itself.

Pure ASGI: it edits only the ``http.response.start`` message, so streamed bodies (SSE,
downloads) and WebSockets pass untouched. Defaults (docs/security.md):

- ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``,
  ``Permissions-Policy`` turning off camera, microphone, geolocation, payment and USB;
- framing refused: ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` (JSON and
  other non-HTML answers also get ``default-src 'none'``). A route that sets its own
  ``Content-Security-Policy`` (the support widget's frame names the sites that may embed
  it) keeps it, and then gets no ``X-Frame-Options`` either when its policy has
  ``frame-ancestors`` (the two would disagree);
- ``Cache-Control: no-store`` on answers to authenticated requests (a bearer token or the
  session cookie), so no shared or browser cache keeps private data;
- ``Strict-Transport-Security: max-age=…`` when the request came over HTTPS (TLS served by
  ``warbler serve``, or a trusted proxy's ``X-Forwarded-Proto: https``), unless
  ``WARBLER_HSTS_MAX_AGE_SECONDS`` is 0.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warbler.security.csrf import SESSION_COOKIE

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
CSP_DATA = "default-src 'none'; frame-ancestors 'none'"
CSP_PAGE = "frame-ancestors 'none'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts_max_age: int) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}" if hsts_max_age > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authenticated = _authenticated(scope)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._add(MutableHeaders(scope=message), authenticated=authenticated, https=https)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(self, headers: MutableHeaders, *, authenticated: bool, https: bool) -> None:
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        csp = headers.get("content-security-policy")
        if csp is None:
            html = headers.get("content-type", "").startswith("text/html")
            headers["Content-Security-Policy"] = CSP_PAGE if html else CSP_DATA
            headers.setdefault("X-Frame-Options", "DENY")
        elif "frame-ancestors" not in csp:
            headers.setdefault("X-Frame-Options", "DENY")
        if authenticated:
            headers.setdefault("Cache-Control", "no-store")
        if https and self.hsts is not None:
            headers.setdefault("Strict-Transport-Security", self.hsts)


def _authenticated(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE.encode() in value:
            return True
    return False
