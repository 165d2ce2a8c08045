"""What retrieval returns, shared by the knowledge base, bots and the OpenAI-compatible API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a passage or curated answer came from, as shown to users."""

    kb_id: str
    document_id: str | None  # None for a curated answer
    title: str  # the document's title (or the curated answer's first question)
    title_path: str  # "Returns > Refunds" (headings above the passage), may be ""
    link: str | None  # the source URL or an API path to the document
    chunk_id: str | None = None
    curated_answer_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: str
    kb_id: str
    document_id: str
    text: str
    citation: Citation
    score: float  # fused (RRF) score
    dense_score: float | None = None  # cosine similarity, if dense search found it
    keyword_rank: int | None = None  # 1-based rank in BM25, if keyword search found it


@dataclass(frozen=True, slots=True)
class CuratedHit:
    answer_id: str
    kb_id: str
    question: str  # the stored phrasing that matched
    answer: str
    score: float
    citation: Citation


@dataclass(frozen=True, slots=True)
class Retrieval:
    """The result of one question against the knowledge bases a principal may read."""

    query: str
    passages: tuple[Passage, ...] = ()
    curated: CuratedHit | None = None
    # False when the minimum-evidence rule found nothing good enough: say "no grounded
    # answer" instead of answering from noise.
    grounded: bool = False
    took_ms: float = 0.0
    searched_kb_ids: tuple[str, ...] = field(default_factory=tuple)
