"""HTTP plumbing shared by the vendor providers: deadlines, status → error, key scrubbing.

Every wait is bounded twice: by the whole request's deadline and by the idle timeout between
two reads of the stream, so a vendor that accepts and then says nothing cannot hang a reply.
Errors carry the vendor's message with the key (and anything shaped like one) masked out;
httpx exceptions are not chained, because they hold the request with its headers.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from warbler.ai.providers.base import (
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from warbler.security.outbound import OutboundPolicy
from warbler.webhooks.targets import TargetRejected, parse_url, pinned, resolve_public

MAX_ERROR_CHARS = 500
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|ak)[-_][A-Za-z0-9_\-\*\.]{6,}", re.IGNORECASE)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret, and every token that looks like an API key, masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


class Deadline:
    """The whole request's deadline plus the idle timeout between reads."""

    def __init__(self, total: float, idle: float) -> None:
        self.total = total
        self.idle = idle
        self.ends = time.monotonic() + total

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def next_wait(self, *, idle: bool = True) -> tuple[float, str]:
        """How long the next read may take, and what to say if it takes longer."""
        left = self.remaining()
        if left <= 0:
            raise ProviderTimeout(f"no complete answer within {self.total:g} s")
        if idle and self.idle < left:
            return self.idle, f"no data for {self.idle:g} s"
        return left, f"no complete answer within {self.total:g} s"


async def bounded(awaitable: Any, deadline: Deadline, *, idle: bool = True) -> Any:
    """Await ``awaitable`` within the deadline; ``ProviderTimeout`` when it runs out."""
    wait, why = deadline.next_wait(idle=idle)
    try:
        async with asyncio.timeout(wait):
            return await awaitable
    except TimeoutError:
        raise ProviderTimeout(why) from None


async def next_line(lines: AsyncIterator[str], deadline: Deadline) -> str | None:
    """The stream's next line, ``None`` at its end."""
    try:
        line: str = await bounded(anext(lines), deadline)
        return line
    except StopAsyncIteration:
        return None


async def open_response(
    client: httpx.AsyncClient,
    url: str,
    *,
    body: dict[str, Any],
    headers: dict[str, str],
    deadline: Deadline,
    stream: bool,
    outbound: OutboundPolicy | None,
    secrets: Sequence[str],
) -> httpx.Response:
    """POST ``body`` and return the open response (status 2xx; others raise mapped errors).

    The caller must ``aclose()`` it. Time to the response headers counts against the idle
    timeout for streams (a vendor that accepts and says nothing) and the total otherwise.
    """
    target, extra_headers, extensions = await _target(url, outbound, secrets)
    request = client.build_request(
        "POST",
        target,
        content=json.dumps(body, ensure_ascii=False).encode(),
        headers={**headers, **extra_headers, "content-type": "application/json"},
        extensions=extensions,
    )
    try:
        response: httpx.Response = await bounded(
            client.send(request, stream=True, follow_redirects=False), deadline, idle=stream
        )
    except httpx.HTTPError as exc:
        raise transport_error(exc, secrets) from None
    if response.is_success:
        return response
    try:
        raw = await bounded(response.aread(), deadline)
    except (httpx.HTTPError, ProviderError):
        raw = b""
    finally:
        await response.aclose()
    raise status_error(response.status_code, response.headers, raw, secrets)


async def _target(
    url: str, outbound: OutboundPolicy | None, secrets: Sequence[str]
) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Where to connect: through the outbound policy (public hosts, pinned) when given."""
    try:
        parsed = parse_url(url)
        if outbound is None or outbound.allow_private or outbound.host_allowed(parsed.host):
            return parsed, {}, {}
        address = await resolve_public(parsed)
    except TargetRejected as exc:
        raise ProviderRejected(
            f"the provider URL is not allowed: {scrub(exc.message, secrets)}"
        ) from None
    target, headers, extensions = pinned(parsed, address)
    return target, headers, extensions


def transport_error(exc: Exception, secrets: Sequence[str]) -> ProviderError:
    """A connection-level failure as a provider error (timeouts → ProviderTimeout)."""
    detail = scrub(str(exc) or type(exc).__name__, secrets)[:MAX_ERROR_CHARS]
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"timed out talking to the provider ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return ProviderUnavailable(f"cannot connect to the provider: {detail}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return ProviderUnavailable(f"the connection broke: {detail}")
    return ProviderUnavailable(f"{type(exc).__name__}: {detail}")


def status_error(
    status: int, headers: httpx.Headers, raw: bytes, secrets: Sequence[str]
) -> ProviderError:
    """A non-2xx response as a provider error, with the vendor's own message."""
    message = scrub(vendor_message(raw) or f"HTTP {status}", secrets)[:MAX_ERROR_CHARS]
    retry_after = parse_retry_after(headers)
    text = f"HTTP {status}: {message}"
    if status == 429:
        return RateLimited(text, status=status, retry_after=retry_after)
    if status == 408:
        return ProviderTimeout(text, status=status, retry_after=retry_after)
    if status >= 500:  # 529 is Anthropic's "overloaded"
        return ProviderUnavailable(text, status=status, retry_after=retry_after)
    return ProviderRejected(text, status=status)


def vendor_message(raw: bytes) -> str:
    """The message inside an error body (OpenAI, Anthropic and most others), else its text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:MAX_ERROR_CHARS]
    return error_message(data) or text[:MAX_ERROR_CHARS]


def error_message(data: Any) -> str:
    """``{"error": {"message": ...}}``, ``{"error": "..."}``, ``{"message": ...}``."""
    if not isinstance(data, dict):
        return ""
    error = data.get("error", data)
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or error.get("detail")
        if message:
            kind = error.get("type") or error.get("code")
            return f"{message} ({kind})" if isinstance(kind, str) and kind else str(message)
    return ""


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms``, ``retry-after`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
