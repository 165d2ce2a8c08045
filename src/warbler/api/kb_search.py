"""Knowledge-base search: what a bot would answer from, for a question (curated answer,
passages with citations, and whether that is enough to answer)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import Request
from warbler.kb.retrieve import MAX_QUERY_CHARS
from warbler.kb.types import Retrieval

router = APIRouter(prefix="/kb", tags=["knowledge base"])


class SearchIn(Request):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question.")
    kb_ids: list[str] | None = Field(
        None, max_length=50, description="Search only these KBs (default: every KB you may read)."
    )
    top_k: int | None = Field(None, ge=1, le=50, description="Passages wanted (default KB_TOP_K).")
    use_curated: bool = Field(True, description="Match curated answers first.")


class CitationOut(BaseModel):
    kb_id: str
    document_id: str | None = Field(description="None for a curated answer.")
    title: str
    title_path: str = Field(description='Headings above the passage: "Returns > Refunds".')
    link: str | None = Field(description="The source URL, or the API path of the document.")
    chunk_id: str | None
    curated_answer_id: str | None


class PassageOut(BaseModel):
    chunk_id: str
    kb_id: str
    document_id: str
    text: str
    score: float = Field(description="Fused (reciprocal rank) score: higher is better.")
    dense_score: float | None = Field(description="Cosine similarity to the question.")
    keyword_rank: int | None = Field(description="1-based rank in keyword (BM25) search.")
    citation: CitationOut


class CuratedOut(BaseModel):
    answer_id: str
    kb_id: str
    question: str = Field(description="The stored phrasing that matched.")
    answer: str
    score: float = Field(description="Cosine similarity of the question to that phrasing.")
    citation: CitationOut


class SearchOut(BaseModel):
    query: str
    grounded: bool = Field(
        description="False: nothing good enough was found; say so rather than guess."
    )
    curated: CuratedOut | None
    passages: list[PassageOut]
    took_ms: float
    searched_kb_ids: list[str]


def retrieval_view(result: Retrieval) -> dict[str, Any]:
    curated = result.curated
    return {
        "query": result.query,
        "grounded": result.grounded,
        "curated": None
        if curated is None
        else {
            "answer_id": curated.answer_id,
            "kb_id": curated.kb_id,
            "question": curated.question,
            "answer": curated.answer,
            "score": curated.score,
            "citation": curated.citation.as_dict(),
        },
        "passages": [
            {
                "chunk_id": p.chunk_id,
                "kb_id": p.kb_id,
                "document_id": p.document_id,
                "text": p.text,
                "score": p.score,
                "dense_score": p.dense_score,
                "keyword_rank": p.keyword_rank,
                "citation": p.citation.as_dict(),
            }
            for p in result.passages
        ],
        "took_ms": result.took_ms,
        "searched_kb_ids": list(result.searched_kb_ids),
    }


@router.post("/search", response_model=SearchOut)
async def search(body: SearchIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Search the knowledge bases you may read. Curated answers match first; passages come
    from keyword and vector search fused by rank, each with its citation. KBs you may not
    read are left out silently, even when named in ``kb_ids``."""
    result = await svc.retriever.retrieve(
        principal, body.query, kb_ids=body.kb_ids, top_k=body.top_k, use_curated=body.use_curated
    )
    return retrieval_view(result)
