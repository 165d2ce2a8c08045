"""HTTP tools: an admin-defined HTTP endpoint the model calls with JSON arguments.

The URL template may hold ``{arg}`` placeholders (path or query, never the host), filled
URL-encoded from the arguments; the other arguments go in the query string (GET, DELETE) or as
a JSON body (POST, PUT, PATCH). Requests go through the outbound policy (public hosts only
unless the operator allowed the host), follow no redirects, and read at most
``MAX_RESPONSE_BYTES`` of the answer. The auth header's value is opened from its sealed form
only for the request; it is never logged, returned by the API, or shown to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from warbler.ai.providers.base import ToolSpec
from warbler.ai.tools.base import ToolContext, ToolError, ToolResult, clip, to_json
from warbler.security.outbound import TargetRejected
from warbler.store.models_tools import HttpTool

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
QUERY_METHODS = ("GET", "DELETE")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_RESPONSE_BYTES = 64 * 1024  # read from the network at most
MAX_MODEL_CHARS = 8_000  # of the body shown to the model
MAX_ERROR_BODY_CHARS = 1_000


def auth_context(tool_id: str) -> str:
    """The sealing context of a tool's auth header value."""
    return f"http_tool:{tool_id}:auth"


def placeholders(template: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def fill_url(template: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The URL with its placeholders filled (URL-encoded), and the arguments left over."""
    used = set(placeholders(template))
    missing = sorted(used - set(args))
    if missing:
        raise ToolError("invalid_arguments", f"missing arguments for the URL: {', '.join(missing)}")
    url = PLACEHOLDER.sub(lambda m: quote(_scalar(args[m.group(1)]), safe=""), template)
    return url, {k: v for k, v in args.items() if k not in used}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _query(args: dict[str, Any]) -> list[tuple[str, str | int | float | bool | None]]:
    params: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in args.items():
        if value is None:
            continue
        if isinstance(value, list):
            params.extend((key, _scalar(v)) for v in value)
        else:
            params.append((key, _scalar(value)))
    return params


class _CappedStream(httpx.AsyncByteStream):
    """Yields at most ``cap + 1`` bytes of a response, then stops reading (the +1 byte lets
    the caller tell a body of exactly ``cap`` bytes from a longer one)."""

    def __init__(self, inner: httpx.AsyncByteStream, cap: int) -> None:
        self.inner = inner
        self.cap = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        room = self.cap + 1
        async for chunk in self.inner:
            piece = chunk[:room]
            room -= len(piece)
            yield piece
            if room <= 0:
                break

    async def aclose(self) -> None:
        await self.inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    """An HTTP transport whose responses are cut after ``cap`` bytes, so a huge (or endless)
    answer costs no more memory than a small one."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self.cap),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True, slots=True)
class DefinedHttpTool:
    """A snapshot of one ``ai_http_tools`` row, runnable as a ``Tool``."""

    id: str
    name: str
    description: str
    method: str
    url_template: str
    parameters: dict[str, Any]
    auth_header_name: str | None
    auth_header_value_sealed: str | None
    allowed_roles: tuple[str, ...]
    timeout_seconds: float

    @classmethod
    def from_row(cls, row: HttpTool) -> DefinedHttpTool:
        return cls(
            id=row.id, name=row.name, description=row.description, method=row.method,
            url_template=row.url_template, parameters=dict(row.parameters),
            auth_header_name=row.auth_header_name,
            auth_header_value_sealed=row.auth_header_value_sealed,
            allowed_roles=tuple(row.allowed_roles or ()), timeout_seconds=row.timeout_seconds,
        )  # fmt: skip

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description or self.name, self.parameters)

    @property
    def ref(self) -> str:
        return f"http:{self.name}"

    @property
    def permission(self) -> str:
        return self.ref

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        url, rest = fill_url(self.url_template, args)
        # identity: the size cap counts the bytes the model will read, not compressed ones.
        headers = {
            "Accept": "application/json, text/*;q=0.9, */*;q=0.1",
            "Accept-Encoding": "identity",
            "User-Agent": "Warbler-Tool/1",
        }
        if self.auth_header_name and self.auth_header_value_sealed:
            headers[self.auth_header_name] = ctx.services.secrets.open(
                self.auth_header_value_sealed, auth_context(self.id)
            )
        body: dict[str, Any] = {}
        if self.method not in QUERY_METHODS:
            body["json"] = rest
        elif rest:
            # Merged by hand: httpx's params= would replace the template's own query.
            url = str(httpx.URL(url).copy_merge_params(_query(rest)))
        transport = CappedTransport(MAX_RESPONSE_BYTES)
        try:
            async with httpx.AsyncClient(
                transport=transport, timeout=self.timeout_seconds
            ) as client:
                response = await ctx.services.outbound.request(
                    client, self.method, url, headers=headers, **body
                )
        except TargetRejected as exc:
            raise ToolError(
                "target_refused", f"the tool's address is not allowed: {exc.message}"
            ) from None
        except httpx.TimeoutException:
            raise ToolError(
                "timeout", f"the service did not answer within {self.timeout_seconds:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                "upstream_unreachable", f"could not reach the service ({type(exc).__name__})"
            ) from None
        return _result(response)


def _result(response: httpx.Response) -> ToolResult:
    raw = response.content
    truncated = len(raw) > MAX_RESPONSE_BYTES
    raw = raw[:MAX_RESPONSE_BYTES]
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    facts = {"status": response.status_code, "bytes": len(raw), "truncated": truncated}
    if response.status_code >= 400:
        shown, _ = clip(text, MAX_ERROR_BODY_CHARS)
        return ToolResult.error(
            "upstream_error",
            f"the service answered HTTP {response.status_code}",
            status=response.status_code,
            body=shown,
        )
    parsed: Any = text
    if not truncated and "json" in response.headers.get("content-type", ""):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
    content = to_json({"status": response.status_code, "body": parsed, "truncated": truncated})
    if len(content) > MAX_MODEL_CHARS:
        shown, _ = clip(text, MAX_MODEL_CHARS)
        content = to_json({"status": response.status_code, "body": shown, "truncated": True})
        facts["truncated"] = True
    return ToolResult(content=content, data=facts)
