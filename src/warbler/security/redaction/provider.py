"""The egress point: a provider that sends text off the machine, wrapped so that what it
sends is redacted and what comes back is restored.

Which providers are external is decided by kind, not by URL: ``openai`` and ``anthropic``
are external even on a loopback address (an SSH tunnel, a LiteLLM proxy or a sidecar on
127.0.0.1 may forward anywhere); ``local`` (our xllamacpp server) and the extractive
default never leave the process's host.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from warbler.ai.providers.base import (
    ChatProvider,
    ChatRequest,
    Done,
    ProviderRejected,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallsReady,
)
from warbler.security.redaction.custom import PatternTimeout
from warbler.security.redaction.session import RedactionSession

EXTERNAL_KINDS = frozenset({"openai", "anthropic"})


def is_external(kind: str) -> bool:
    return kind in EXTERNAL_KINDS


class RedactingProvider:
    """A ``ChatProvider`` around an external one. ``config`` and ``name`` are the inner
    provider's, so the fallback chain and usage rows see no difference."""

    def __init__(self, inner: ChatProvider, session: RedactionSession) -> None:
        self.inner = inner
        self.session = session
        self.name = inner.name
        self.config = getattr(inner, "config", None)

    def __repr__(self) -> str:
        return f"RedactingProvider({self.inner!r})"

    def redact(self, request: ChatRequest) -> ChatRequest:
        s = self.session
        messages = tuple(
            dataclasses.replace(
                m,
                content=s.text(m.content),
                name=s.name(m.name),
                tool_calls=tuple(
                    dataclasses.replace(c, arguments=s.value(c.arguments)) for c in m.tool_calls
                ),
            )
            for m in request.messages
        )
        return dataclasses.replace(request, messages=messages)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            outgoing = self.redact(request)
        except PatternTimeout as exc:
            # Fail closed: a text we could not check is not sent. The chain moves on.
            raise ProviderRejected(f"not sent: {exc}") from None
        restorer = self.session.restorer()
        events = self.inner.stream(outgoing)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    text = restorer.feed(event.text)
                    if text:
                        yield TextDelta(text)
                    continue
                if isinstance(event, ToolCallsReady | Done):
                    tail = restorer.flush()
                    if tail:
                        yield TextDelta(tail)
                if isinstance(event, ToolCallsReady):
                    yield ToolCallsReady(tuple(self._restored(c) for c in event.calls))
                else:
                    yield event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    def _restored(self, call: ToolCall) -> ToolCall:
        return dataclasses.replace(call, arguments=self.session.restore_arguments(call.arguments))

    async def aclose(self) -> None:
        await self.inner.aclose()
