"""Fetch a web page or file for ingestion through the outbound policy (SSRF-safe), size-limited.

Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked by the policy
again. The response body is cut off as soon as it passes the limit, whatever the server
declared. The content type (or, failing that, the URL's extension) chooses the parser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from warbler import __version__
from warbler.kb.parsers.document import ParseError
from warbler.security.outbound import OutboundPolicy, TargetRejected

MAX_REDIRECTS = 5
USER_AGENT = f"Warbler/{__version__} (knowledge base ingestion)"
CONTENT_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
EXTENSIONS = {
    ".html": "html", ".htm": "html", ".pdf": "pdf", ".md": "md", ".markdown": "md",
    ".txt": "txt", ".csv": "csv", ".docx": "docx", ".xlsx": "xlsx",
}  # fmt: skip


class FetchError(ParseError):
    """The URL could not be fetched; ``retryable`` when trying later may help (network
    errors, 5xx, 429), not when it cannot (404, refused host, unsupported type)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    format: str  # the parser to use: html pdf md txt csv docx xlsx
    title: str  # a fallback title: the last path segment, or the host


class _TooLarge(Exception):
    pass


class _LimitedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                raise _TooLarge()
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class _LimitedTransport(httpx.AsyncBaseTransport):
    """Refuses bodies over ``limit`` bytes while they stream in, never buffering more."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self.inner = inner
        self.limit = limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await response.aclose()
            raise _TooLarge()
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code, headers=response.headers,
            stream=_LimitedStream(stream, self.limit), extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        await self.inner.aclose()


def format_of(content_type: str, url: httpx.URL) -> str:
    mime = content_type.split(";", 1)[0].strip().lower()
    suffix = "." + url.path.rsplit(".", 1)[-1].lower() if "." in url.path.rsplit("/", 1)[-1] else ""
    if mime == "text/plain" and EXTENSIONS.get(suffix) == "md":
        return "md"
    if mime in CONTENT_TYPES:
        return CONTENT_TYPES[mime]
    if mime in ("", "application/octet-stream", "binary/octet-stream") and suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise FetchError(f"unsupported content type {mime or '(none)'} at {url}")


async def fetch_url(
    policy: OutboundPolicy,
    url: str,
    *,
    max_bytes: int,
    timeout_seconds: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Fetched:
    """GET ``url`` (following redirects through the policy); raises ``FetchError``."""
    inner = transport or httpx.AsyncHTTPTransport()
    headers = {"User-Agent": USER_AGENT, "Accept": ", ".join([*CONTENT_TYPES, "*/*;q=0.1"])}
    current = url
    async with httpx.AsyncClient(
        transport=_LimitedTransport(inner, max_bytes), timeout=timeout_seconds
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                response = await policy.request(client, "GET", current, headers=headers)
            except TargetRejected as exc:
                raise FetchError(f"the URL is not allowed: {exc.message}") from None
            except _TooLarge:
                raise FetchError(
                    f"the document at {current} is larger than {max_bytes} bytes"
                ) from None
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {current}: {exc!r}", retryable=True) from None
            if response.is_redirect and "location" in response.headers:
                current = str(httpx.URL(current).join(response.headers["location"]))
                continue
            if response.status_code == 429 or response.status_code >= 500:
                raise FetchError(f"{current} answered HTTP {response.status_code}", retryable=True)
            if response.status_code != 200:
                raise FetchError(f"{current} answered HTTP {response.status_code}")
            final = httpx.URL(current)
            fmt = format_of(response.headers.get("content-type", ""), final)
            segment = final.path.rstrip("/").rsplit("/", 1)[-1]
            return Fetched(current, response.content, fmt, segment or final.host)
    raise FetchError(f"{url} redirects more than {MAX_REDIRECTS} times")
