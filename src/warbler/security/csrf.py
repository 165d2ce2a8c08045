"""Cookie sessions for browsers, and the CSRF protection they need.

``POST /auth/login`` with ``"cookie": true`` sets two cookies instead of returning the token:

- ``warbler_session``: the access token; HttpOnly (page scripts never see it),
  SameSite=Lax, Path=/, Secure when the request came over HTTPS (served directly, or through
  a trusted proxy that says ``X-Forwarded-Proto: https``).
- ``warbler_csrf``: readable by the page's scripts, same attributes otherwise. Its value is
  an HMAC of the session token, so it is bound to that session: a cookie planted from a
  sibling subdomain does not match.

A request that authenticates with the session cookie (no ``Authorization`` header) and uses an
unsafe method (anything but GET, HEAD, OPTIONS) must echo that value in ``X-CSRF-Token``, or
it is refused with 403 ``csrf_failed``: another site can make a browser send the cookie but
cannot read it to send the header. Bearer-token requests are unaffected (a browser never
attaches an ``Authorization`` header on its own). A WebSocket handshake carries no custom
header, so for WebSockets the cookie counts only when the ``Origin`` is this server's own
(``CookieWebSocketAuth``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlsplit

from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from warbler.errors import Forbidden
from warbler.security.secrets import hmac_sha256, same

SESSION_COOKIE = "warbler_session"
CSRF_COOKIE = "warbler_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfFailed(Forbidden):
    code = "csrf_failed"


def csrf_token_for(session_token: str) -> str:
    return hmac_sha256(session_token, b"warbler-csrf")


def check_csrf(method: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> None:
    """For a request authenticated by the session cookie: unsafe methods need the header."""
    if method.upper() in SAFE_METHODS:
        return
    session = cookies.get(SESSION_COOKIE, "")
    sent = headers.get(CSRF_HEADER, "")
    expected = csrf_token_for(session)
    # Double submit (header == cookie) and bound to the session (== HMAC of its token).
    if not (sent and same(sent, cookies.get(CSRF_COOKIE, "")) and same(sent, expected)):
        raise CsrfFailed(
            "a request authenticated by the session cookie needs the warbler_csrf cookie's "
            "value in the X-CSRF-Token header",
            details={"header": "X-CSRF-Token", "cookie": CSRF_COOKIE},
        )


def set_session_cookies(
    response: Response, session_token: str, *, expires_at: datetime, secure: bool
) -> str:
    """Set both cookies on ``response``; returns the CSRF token (also in the body)."""
    csrf = csrf_token_for(session_token)
    for name, value, httponly in (
        (SESSION_COOKIE, session_token, True),
        (CSRF_COOKIE, csrf, False),
    ):
        response.set_cookie(
            name, value, expires=expires_at, path="/", secure=secure, httponly=httponly,
            samesite="lax",
        )  # fmt: skip
    return csrf


def clear_session_cookies(response: Response, *, secure: bool) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(
            name, path="/", secure=secure, httponly=name == SESSION_COOKIE, samesite="lax"
        )


class CookieWebSocketAuth:
    """Lets a browser holding a cookie session open the WebSocket gateway: a same-origin
    handshake with the session cookie and no other credentials gets the cookie's token as
    its ``Authorization`` header. A cross-origin handshake keeps none (the gateway then
    asks for credentials), which stops other sites from opening sockets as the user."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = with_cookie_token(scope)
        await self.app(scope, receive, send)


def with_cookie_token(scope: Scope) -> Scope:
    """A WebSocket handshake's scope, with the session cookie's token as its credentials
    where the rules above allow."""
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    names = {k for k, _ in headers}
    if b"authorization" in names or b"access_token=" in scope.get("query_string", b""):
        return scope
    raw = b"; ".join(v for k, v in headers if k == b"cookie").decode("latin-1")
    session = cookie_parser(raw).get(SESSION_COOKIE) if raw else None
    if not session or not _same_origin(dict(headers)):
        return scope
    headers.append((b"authorization", b"Bearer " + session.encode("latin-1")))
    return {**scope, "headers": headers}


def _same_origin(headers: dict[bytes, bytes]) -> bool:
    origin = headers.get(b"origin", b"").decode("latin-1")
    host = headers.get(b"host", b"").decode("latin-1").lower()
    if not origin or not host:
        return False
    return (urlsplit(origin).netloc or "").lower() == host
