"""Search a user's visible history: their conversations, minus what they deleted for themselves."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text

from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.im.views import message_view
from warbler.search.index import search_key
from warbler.search.tokenize import tokens
from warbler.security.encryption.blind_index import query_term
from warbler.store.db import Database
from warbler.store.models import Message, StoredFile

MAX_QUERY_TOKENS = 16


class SearchService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(
        self,
        principal: Principal,
        query: str,
        *,
        conversation_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """Messages containing every word of ``query``, newest first."""
        user = principal.require_user()
        words = list(dict.fromkeys(tokens(query)))[:MAX_QUERY_TOKENS]
        if not words:
            raise InvalidRequest("the query has no searchable words", details={"field": "q"})
        limit = max(1, min(limit, 100))
        params: dict[str, Any] = {
            "tn": principal.tenant_id, "u": user, "lim": limit + 1, "off": max(0, offset),
        }  # fmt: skip
        scope = ""
        if conversation_id:
            scope = "AND ms.conversation_id = :c"
            params["c"] = conversation_id
        visible = (
            "ms.tenant_id = :tn "
            "AND ms.conversation_id IN (SELECT conversation_id FROM members WHERE user_id = :u) "
            "AND ms.message_id NOT IN (SELECT message_id FROM message_hides WHERE user_id = :u) "
            + scope
        )
        # Terms are blind-index hashes (letters only): quoting is all they need.
        key = await search_key(principal.tenant_id)
        terms = [query_term(w, key) for w in words]
        if self.db.is_sqlite:
            params["q"] = " ".join(f'"{t}"' for t in terms)
            sql = (
                "SELECT ms.message_id FROM message_search ms "
                "JOIN messages m ON m.id = ms.message_id "
                f"WHERE message_search MATCH :q AND {visible} "
                "ORDER BY m.created_at DESC, m.seq DESC LIMIT :lim OFFSET :off"
            )
        else:
            params["q"] = " & ".join(f"'{t}'" for t in terms)
            sql = (
                "SELECT ms.message_id FROM message_search ms "
                "JOIN messages m ON m.id = ms.message_id "
                f"WHERE ms.tokens @@ to_tsquery('simple', :q) AND {visible} "
                "ORDER BY m.created_at DESC, m.seq DESC LIMIT :lim OFFSET :off"
            )
        async with self.db.read() as s:
            ids = list((await s.scalars(text(sql), params)).all())
            has_more = len(ids) > limit
            ids = ids[:limit]
            rows = (
                await s.execute(
                    select(Message, StoredFile)
                    .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                    .where(Message.id.in_(ids))
                )
            ).all()
        by_id = {msg.id: message_view(msg, file) for msg, file in rows}
        results = [
            {"message": by_id[i], "highlights": _highlights(by_id[i]["text"] or "", words)}
            for i in ids
            if i in by_id
        ]
        return {"results": results, "has_more": has_more, "query_tokens": words}


def _highlights(body: str, words: list[str]) -> list[list[int]]:
    """[start, end) character spans of query words in the text, for the client to mark."""
    low = body.lower()
    spans: list[list[int]] = []
    for w in words:
        start = low.find(w)
        while start != -1 and len(spans) < 50:
            spans.append([start, start + len(w)])
            start = low.find(w, start + len(w))
    return sorted(spans)
