"""A bot's providers in order: retry the one that failed when that may help, else the next.

Retryable errors (429, 5xx, timeouts, cut streams) are retried on the same provider up to its
``max_retries`` with exponential backoff from ``ai_retry_base_seconds`` (a vendor's
Retry-After is honoured up to ``MAX_RETRY_AFTER``; asked to wait longer, the chain moves on).
A rejection (bad key, unknown model) goes to the next provider at once. If text was already
streamed when a call fails, the chain yields ``StreamReset`` first so the caller can drop it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from warbler.ai.providers.base import (
    ChatProvider,
    ChatRequest,
    Done,
    ProviderError,
    ProviderUnavailable,
    StreamEvent,
    StreamReset,
)
from warbler.config import Settings

log = logging.getLogger("warbler.ai.providers")

MAX_RETRY_AFTER = 10.0  # seconds; a longer Retry-After sends the chain to the next provider
MAX_BACKOFF = 10.0


class AllProvidersFailed(ProviderError):
    """Every provider in the chain failed; ``failures`` has each one's last error."""

    def __init__(self, failures: Sequence[tuple[str, ProviderError]]) -> None:
        self.failures = list(failures)
        parts = [f"{name}: {describe(error)}" for name, error in self.failures]
        last = self.failures[-1][1] if self.failures else None
        super().__init__(
            "every provider failed: " + "; ".join(parts),
            status=last.status if last else None,
            retry_after=last.retry_after if last else None,
        )
        # A later attempt (the reply job's next try) may succeed if any failure was transient.
        self.retryable = any(error.retryable for _, error in self.failures)


def describe(error: ProviderError) -> str:
    status = f" (HTTP {error.status})" if error.status else ""
    return f"{type(error).__name__}{status}: {error.message}"


class FallbackChain:
    """Itself a ``ChatProvider``: ``Done.extra`` says who answered and what it took
    (``provider``, ``attempts``, ``fallbacks``, ``failures``)."""

    def __init__(
        self,
        providers: Sequence[ChatProvider],
        settings: Settings,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.providers = list(providers)
        self.name = "chain:" + ",".join(p.name for p in self.providers)
        self._settings = settings
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"FallbackChain({[p.name for p in self.providers]!r})"

    def retries(self, provider: ChatProvider) -> int:
        config = getattr(provider, "config", None)
        if config is not None and getattr(config, "max_retries", None) is not None:
            return int(config.max_retries)
        return self._settings.ai_max_retries

    def backoff(self, retry: int, error: ProviderError) -> float | None:
        """Seconds before retry number ``retry`` (0-based); None: do not retry."""
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= MAX_RETRY_AFTER else None
        return min(MAX_BACKOFF, self._settings.ai_retry_base_seconds * 2**retry)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        failures: list[tuple[str, ProviderError]] = []  # every failed attempt
        final: list[tuple[str, ProviderError]] = []  # each provider's last error
        attempts = 0
        for position, provider in enumerate(self.providers):
            retries = self.retries(provider)
            for retry in range(retries + 1):
                attempts += 1
                streamed = False
                events = provider.stream(request)
                try:
                    try:
                        async for event in events:
                            if isinstance(event, Done):
                                yield _annotated(event, provider, attempts, position, failures)
                                return
                            if isinstance(event, StreamReset):
                                continue  # a provider never sends it; ours is the only one
                            streamed = True
                            yield event
                    finally:
                        await _close(events)
                    raise ProviderUnavailable("the provider's stream ended without Done")
                except ProviderError as exc:
                    error = exc
                except Exception as exc:  # a provider's bug must not end the whole reply
                    log.exception("provider %s raised unexpectedly", provider.name)
                    error = ProviderUnavailable(f"unexpected {type(exc).__name__} in the provider")
                failures.append((provider.name, error))
                delay = self.backoff(retry, error) if error.retryable and retry < retries else None
                nxt = "retrying" if delay is not None else "giving up on it"
                log.warning(
                    "provider %s failed (attempt %d): %s; %s",
                    provider.name,
                    attempts,
                    describe(error),
                    nxt,
                )
                if streamed:
                    yield StreamReset(f"{provider.name} failed: {error.message}")
                if delay is None:
                    final.append((provider.name, error))
                    break
                if delay > 0:
                    await self._sleep(delay)
        raise AllProvidersFailed(final)

    async def aclose(self) -> None:
        for provider in self.providers:
            try:
                await provider.aclose()
            except Exception:  # closing one must not leave the others open
                log.exception("closing provider %s failed", provider.name)


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    """Close a provider's stream we stopped reading (its HTTP response goes with it)."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


def _annotated(
    done: Done,
    provider: ChatProvider,
    attempts: int,
    position: int,
    failures: list[tuple[str, ProviderError]],
) -> Done:
    extra = {
        **done.extra,
        "provider": provider.name,
        "attempts": attempts,
        "fallbacks": position,
        "failures": [
            {"provider": name, "error": type(e).__name__, "status": e.status, "message": e.message}
            for name, e in failures
        ],
    }
    return dataclasses.replace(done, extra=extra)
