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
                message["headers"] = self._add(
                    list(message.get("headers", ())), authenticated=authenticated, https=https
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add(
        self, raw: list[tuple[bytes, bytes]], *, authenticated: bool, https: bool
    ) -> list[tuple[bytes, bytes]]:
        """``raw`` with the missing headers appended (lower-case names, as MutableHeaders
        writes them; on every response, so one pass over the list, not one per header)."""
        present: dict[bytes, bytes] = {}
        for name, value in raw:
            present.setdefault(name.lower(), value)

        def default(name: bytes, value: bytes) -> None:
            if name not in present:
                present[name] = value
                raw.append((name, value))

        default(b"x-content-type-options", b"nosniff")
        default(b"referrer-policy", b"no-referrer")
        default(b"permissions-policy", _PERMISSIONS)
        csp = present.get(b"content-security-policy")
        if csp is None:
            html = present.get(b"content-type", b"").startswith(b"text/html")
            raw.append((b"content-security-policy", _CSP_PAGE if html else _CSP_DATA))
            default(b"x-frame-options", b"DENY")
        elif b"frame-ancestors" not in csp:
            default(b"x-frame-options", b"DENY")
        if authenticated:
            default(b"cache-control", b"no-store")
        if https and self.hsts is not None:
            default(b"strict-transport-security", self.hsts.encode())
        return raw


_PERMISSIONS = PERMISSIONS_POLICY.encode()
_CSP_DATA = CSP_DATA.encode()
_CSP_PAGE = CSP_PAGE.encode()


def _authenticated(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE.encode() in value:
            return True
    return False
