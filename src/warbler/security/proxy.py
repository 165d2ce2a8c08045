"""Who is on the other end: the client IP and scheme of a request, believing ``X-Forwarded-*``
only from trusted reverse proxies, and the ``request_context`` the audit log reads.

``RequestContext`` is pure ASGI (HTTP and WebSocket alike, streaming untouched). When the
socket peer is in ``WARBLER_TRUSTED_PROXIES`` it walks ``X-Forwarded-For`` from the right
(the hop the proxy itself appended) past every trusted proxy and takes the first address
that is not one: a client can prepend anything to the header, so the left-most entry is
never believed. ``X-Forwarded-Proto: https`` from a trusted proxy makes the request count as
HTTPS (HSTS, Secure cookies). The result is written into the ASGI scope (``client``,
``scheme``) like uvicorn's own proxy-header handling, which ``warbler serve`` turns off so
that this setting is the only one.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from warbler.security.audit import RequestInfo, request_context

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_USER_AGENT = 300


class TrustedProxies:
    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(e, strict=False) for e in entries
        )
        # Every request asks about its peer: parsing the address costs more than the rest of
        # this middleware, and the same few addresses come again and again.
        self.trusts = functools.lru_cache(maxsize=4096)(self._trusts)

    def _trusts(self, address: str | None) -> bool:
        ip = _parse(address)
        return ip is not None and any(ip in net for net in self.networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The client's address: ``peer`` unless it is a trusted proxy that forwarded one."""
        if not forwarded_for or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            address = _strip_port(hop)
            if _parse(address) is None:
                return peer  # a malformed hop: believe nothing further left of it
            if not self.trusts(address):
                return address
        return _strip_port(hops[0]) if hops else peer  # every hop is a trusted proxy


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _strip_port(hop: str) -> str:
    """``1.2.3.4:5678`` and ``[::1]:5678`` as some proxies write them, without the port."""
    if hop.startswith("["):
        return hop[1:].split("]", 1)[0]
    if hop.count(":") == 1:
        return hop.split(":", 1)[0]
    return hop


class RequestContext:
    """Resolves the client IP and scheme, and sets ``request_context`` for the request."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str]) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token = request_context.set(self.resolve(scope))
        try:
            await self.app(scope, receive, send)
        finally:
            request_context.reset(token)

    def resolve(self, scope: Scope) -> RequestInfo:
        """The request's client address and scheme, written into ``scope``; its audit info.
        (Also called by the gateway's entry, app.py, which skips the middlewares.)"""
        headers = {k: v for k, v in scope["headers"] if k in _WANTED}
        client = scope.get("client")
        peer = client[0] if client else None
        ip = self.proxies.client_ip(peer, _text(headers.get(b"x-forwarded-for")))
        if ip != peer and ip is not None:
            scope["client"] = (ip, 0)
        if self.proxies.trusts(peer):
            proto = (_text(headers.get(b"x-forwarded-proto")) or "").split(",")[0].strip()
            if proto in ("https", "http"):
                secure = proto == "https"
                if scope["type"] == "websocket":
                    scope["scheme"] = "wss" if secure else "ws"
                else:
                    scope["scheme"] = proto
        agent = _text(headers.get(b"user-agent"))
        return RequestInfo(ip=ip, user_agent=agent[:MAX_USER_AGENT] if agent else None)


_WANTED = (b"x-forwarded-for", b"x-forwarded-proto", b"user-agent")


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
