"""Build a provider from its configuration (one place maps ``kind`` to a class)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from warbler.ai.providers.anthropic import AnthropicProvider
from warbler.ai.providers.base import ChatProvider
from warbler.ai.providers.chain import FallbackChain
from warbler.ai.providers.config import ProviderConfig
from warbler.ai.providers.openai_compat import OpenAICompatProvider
from warbler.config import Settings
from warbler.security.outbound import OutboundPolicy
from warbler.security.redaction.provider import RedactingProvider, is_external
from warbler.security.redaction.session import RedactionSession


def build_provider(
    config: ProviderConfig,
    settings: Settings,
    *,
    client: httpx.AsyncClient | None = None,
    outbound: OutboundPolicy | None = None,
    redaction: RedactionSession | None = None,
) -> ChatProvider:
    """``outbound``: send requests through the SSRF policy (tenant-configured URLs); a
    ``client`` passed in is shared and left open by the provider's ``aclose``.
    ``redaction``: the answer's PII redaction, applied to providers that send text off the
    machine (``security/redaction/provider.py`` says which)."""
    provider = _build(config, settings, client=client, outbound=outbound)
    if redaction is not None and is_external(config.kind):
        return RedactingProvider(provider, redaction)
    return provider


def _build(
    config: ProviderConfig,
    settings: Settings,
    *,
    client: httpx.AsyncClient | None,
    outbound: OutboundPolicy | None,
) -> ChatProvider:
    if config.kind == "openai":
        return OpenAICompatProvider(config, settings, client=client, outbound=outbound)
    if config.kind == "anthropic":
        return AnthropicProvider(config, settings, client=client, outbound=outbound)
    if config.kind == "local":
        from warbler.ai.providers.local import LocalProvider

        # The local server is ours, on loopback: the outbound policy does not apply.
        return LocalProvider(config, settings, client=client)
    raise ValueError(f"unknown provider kind {config.kind!r}")


def build_chain(
    configs: Sequence[ProviderConfig],
    settings: Settings,
    *,
    client: httpx.AsyncClient | None = None,
    outbound: OutboundPolicy | None = None,
    redaction: RedactionSession | None = None,
) -> FallbackChain:
    """A bot's providers, in order, as one fallback chain (one ``redaction`` session for
    all: one datum has one placeholder whichever provider answers)."""
    providers = [
        build_provider(c, settings, client=client, outbound=outbound, redaction=redaction)
        for c in configs
    ]
    return FallbackChain(providers, settings)
