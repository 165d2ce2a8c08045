"""``kb_search``: search the bot's knowledge bases, as the user who asked may read them."""

from __future__ import annotations

from typing import Any

from warbler.ai.providers.base import ToolSpec
from warbler.ai.tools.base import ToolContext, ToolResult
from warbler.ai.tools.permissions import KB_SEARCH
from warbler.kb.types import Citation

MAX_TOP_K = 10
DEFAULT_TOP_K = 5


class KbSearch:
    ref = "kb_search"
    permission: str | None = KB_SEARCH
    allowed_roles: tuple[str, ...] | None = None
    timeout_seconds: float | None = None
    spec = ToolSpec(
        name="kb_search",
        description="Search the company knowledge base (documents and curated answers). "
        "Returns numbered passages with their source; cite them as [1], [2]. Ask in the "
        "language of the documents when you know it.",
        parameters={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 1000,
                    "description": "What to look for, as a question or keywords.",
                },
                "top_k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TOP_K,
                    "description": f"How many passages (default {DEFAULT_TOP_K}).",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        # The asker's principal, not the bot's: KB read rules apply to whoever asked.
        retrieval = await ctx.services.retriever.retrieve(
            ctx.principal,
            args["query"],
            kb_ids=list(ctx.kb_ids) or None,
            top_k=int(args.get("top_k") or DEFAULT_TOP_K),
        )
        citations: list[Citation] = []
        payload: dict[str, Any] = {"query": retrieval.query, "grounded": retrieval.grounded}
        if retrieval.curated is not None:
            citations.append(retrieval.curated.citation)
            payload["curated_answer"] = {
                "n": len(citations),
                "question": retrieval.curated.question,
                "answer": retrieval.curated.answer,
                "source": _source(retrieval.curated.citation),
            }
        passages = []
        for passage in retrieval.passages:
            citations.append(passage.citation)
            passages.append(
                {"n": len(citations), "text": passage.text, "source": _source(passage.citation)}
            )
        payload["passages"] = passages
        if not passages and retrieval.curated is None:
            payload["note"] = "nothing found in the knowledge bases this user may read"
        return ToolResult.ok(
            payload,
            citations=citations,
            data={
                "passages": len(passages),
                "curated": retrieval.curated is not None,
                "grounded": retrieval.grounded,
                "kb_ids": list(retrieval.searched_kb_ids),
            },
        )


def _source(citation: Citation) -> dict[str, Any]:
    out: dict[str, Any] = {"title": citation.title}
    if citation.title_path:
        out["section"] = citation.title_path
    if citation.link:
        out["link"] = citation.link
    return out
