"""Where a webhook may point: http(s) URLs whose host resolves only to public addresses.

Without this rule a tenant admin could make the server POST to its own loopback, the
cloud metadata address (169.254.169.254) or the private network it sits in (SSRF).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from warbler.errors import InvalidRequest

MAX_URL_CHARS = 2000


class TargetRejected(InvalidRequest):
    """The URL is malformed or its host is (or resolves to) a non-public address."""


def parse_url(url: str) -> httpx.URL:
    """Check the URL's shape: http or https, a host, at most ``MAX_URL_CHARS`` characters."""
    if len(url) > MAX_URL_CHARS:
        raise TargetRejected(f"the URL is longer than {MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise TargetRejected(f"not a valid URL: {exc}", details={"field": "url"}) from exc
    if parsed.scheme not in ("http", "https"):
        raise TargetRejected(
            "the URL must start with http:// or https://", details={"field": "url"}
        )
    if not parsed.host:
        raise TargetRejected("the URL has no host", details={"field": "url"})
    if parsed.fragment:
        raise TargetRejected("the URL must not have a #fragment", details={"field": "url"})
    return parsed


def is_public(address: str) -> bool:
    """Globally routable unicast: not loopback, private, link-local, shared, reserved,
    multicast or unspecified (an IPv4-mapped IPv6 address is judged by its IPv4 part)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve_public(url: httpx.URL) -> str:
    """Resolve the URL's host; return an address to connect to, or raise ``TargetRejected``
    if any address it resolves to is not public (one bad answer is enough to refuse)."""
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRejected(
            f"cannot resolve the host {host!r}", details={"field": "url", "host": host}
        ) from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRejected(f"the host {host!r} has no address", details={"field": "url"})
    for address in addresses:
        if not is_public(address):
            raise TargetRejected(
                f"the host {host!r} resolves to a non-public address ({address}); "
                "only public addresses may be called (an operator can allow a host)",
                details={"field": "url", "host": host, "address": address},
            )
    return addresses[0]


async def check_target(url: str, *, allow_private: bool) -> str:
    """Validate a webhook URL as given by an admin; returns it normalized."""
    parsed = parse_url(url)
    if not allow_private:
        await resolve_public(parsed)
    return str(parsed)


def pinned(url: httpx.URL, address: str) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL rewritten to connect to ``address``, with the Host header and TLS server name
    of the original host, so the request goes exactly where the check said it would (DNS
    cannot answer differently between the check and the connection)."""
    headers = {"Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=address), headers, extensions
