"""Curated answers (FAQ pairs): edited by people, matched by question similarity before any
retrieval, and served as written, without calling a model.

Each answer has several phrasings of its question. Every phrasing is embedded as a *query*
(e5's ``query:`` prefix), like the questions users ask, so matching is query against query:
on the demo FAQ that separated paraphrases from different questions better than embedding the
phrasings as passages (docs/knowledge.md, "Curated answers"). Any change bumps the KB's
``content_version``, so every node's retriever reloads them.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import InvalidRequest, NotFound, UnsupportedType
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.kb.access import load_readable
from warbler.kb.embedders.base import Embedder
from warbler.kb.types import Citation, CuratedHit
from warbler.search.tokenize import tokens
from warbler.store.db import Database
from warbler.store.models_kb import CuratedAnswer, CuratedQuestion, KnowledgeBase

SCOPE = "kb:write"
MAX_QUESTIONS = 30
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 10_000
MAX_IMPORT_ROWS = 5_000
IMPORT_FORMATS = ("csv", "xlsx")


@dataclass(frozen=True, slots=True)
class CuratedIndex:
    """One KB's enabled curated answers, in memory: a row per phrasing."""

    kb_id: str
    answer_ids: list[str]  # per phrasing
    questions: list[str]  # per phrasing
    matrix: np.ndarray  # (phrasings, dim) float32, L2-normalised
    answers: dict[str, tuple[str, str | None, str]]  # id -> (answer, link, first question)

    def best(self, query: np.ndarray) -> tuple[int, float] | None:
        if not self.answer_ids or self.matrix.shape[1] != query.shape[0]:
            return None
        scores = self.matrix @ query
        i = int(np.argmax(scores))
        return i, float(scores[i])

    def hit(self, i: int, score: float) -> CuratedHit:
        answer_id = self.answer_ids[i]
        answer, link, title = self.answers[answer_id]
        citation = Citation(
            kb_id=self.kb_id,
            document_id=None,
            title=title,
            title_path="",
            link=link,
            curated_answer_id=answer_id,
        )
        return CuratedHit(answer_id, self.kb_id, self.questions[i], answer, score, citation)


def best_curated(
    indexes: Sequence[CuratedIndex], query: np.ndarray, min_score: float
) -> CuratedHit | None:
    """The most similar phrasing over these KBs, if it reaches ``min_score``."""
    best: tuple[CuratedIndex, int, float] | None = None
    for index in indexes:
        found = index.best(query)
        if found is not None and (best is None or found[1] > best[2]):
            best = (index, *found)
    if best is None or best[2] < min_score:
        return None
    return best[0].hit(best[1], best[2])


def _clean_questions(questions: Sequence[str]) -> list[str]:
    out: list[str] = []
    for q in questions:
        q = " ".join(str(q).split())
        if not q:
            continue
        if len(q) > MAX_QUESTION_CHARS:
            raise InvalidRequest(
                f"a question is longer than {MAX_QUESTION_CHARS} characters",
                details={"field": "questions"},
            )
        if q not in out:
            out.append(q)
    if not out:
        raise InvalidRequest("give at least one question", details={"field": "questions"})
    if len(out) > MAX_QUESTIONS:
        raise InvalidRequest(
            f"at most {MAX_QUESTIONS} phrasings per answer", details={"field": "questions"}
        )
    return out


def _clean_answer(answer: str) -> str:
    answer = answer.strip()
    if not answer:
        raise InvalidRequest("the answer is empty", details={"field": "answer"})
    if len(answer) > MAX_ANSWER_CHARS:
        raise InvalidRequest(
            f"the answer is longer than {MAX_ANSWER_CHARS} characters", details={"field": "answer"}
        )
    return answer


def curated_view(answer: CuratedAnswer, questions: list[str]) -> dict[str, Any]:
    return {
        "id": answer.id,
        "kb_id": answer.kb_id,
        "questions": questions,
        "answer": answer.answer,
        "link": answer.link,
        "enabled": answer.enabled,
        "hits": answer.hits,
        "last_hit_at": answer.last_hit_at,
        "created_by": answer.created_by,
        "created_at": answer.created_at,
        "updated_at": answer.updated_at,
    }


class CuratedService:
    def __init__(self, db: Database, embedder: Embedder, settings: Settings) -> None:
        self.db = db
        self.embedder = embedder
        self.settings = settings

    # -- reading ------------------------------------------------------------------------

    async def list(self, principal: Principal, kb_id: str) -> builtins.list[dict[str, Any]]:
        """Every curated answer of a KB the principal may read, newest first."""
        async with self.db.read() as s:
            await load_readable(s, principal, kb_id)
            answers = (
                await s.scalars(
                    select(CuratedAnswer)
                    .where(CuratedAnswer.tenant_id == principal.tenant_id)
                    .where(CuratedAnswer.kb_id == kb_id)
                    .order_by(CuratedAnswer.created_at.desc(), CuratedAnswer.id.desc())
                )
            ).all()
            questions = await self._questions_of(s, [a.id for a in answers])
        return [curated_view(a, questions.get(a.id, [])) for a in answers]

    async def get(self, principal: Principal, kb_id: str, answer_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            await load_readable(s, principal, kb_id)
            answer = await self._answer(s, principal.tenant_id, kb_id, answer_id)
            questions = await self._questions_of(s, [answer.id])
        return curated_view(answer, questions.get(answer.id, []))

    async def _questions_of(
        self, s: AsyncSession, answer_ids: builtins.list[str]
    ) -> dict[str, builtins.list[str]]:
        out: dict[str, builtins.list[str]] = {}
        if not answer_ids:
            return out
        rows = await s.execute(
            select(CuratedQuestion.answer_id, CuratedQuestion.question)
            .where(CuratedQuestion.answer_id.in_(answer_ids))
            .order_by(CuratedQuestion.answer_id, CuratedQuestion.id)
        )
        for answer_id, question in rows.all():
            out.setdefault(answer_id, []).append(question)
        return out

    async def _answer(
        self, s: AsyncSession, tenant_id: str, kb_id: str, answer_id: str
    ) -> CuratedAnswer:
        answer = await s.scalar(
            select(CuratedAnswer).where(
                CuratedAnswer.tenant_id == tenant_id,
                CuratedAnswer.kb_id == kb_id,
                CuratedAnswer.id == answer_id,
            )
        )
        if answer is None:
            raise NotFound("no such curated answer", details={"answer_id": answer_id})
        return answer

    # -- writing ------------------------------------------------------------------------

    async def _writable_kb(
        self, s: AsyncSession, principal: Principal, kb_id: str
    ) -> KnowledgeBase:
        principal.require_admin(SCOPE)
        kb = await s.scalar(
            select(KnowledgeBase).where(
                KnowledgeBase.tenant_id == principal.tenant_id, KnowledgeBase.id == kb_id
            )
        )
        if kb is None:
            raise NotFound("no such knowledge base", details={"kb_id": kb_id})
        return kb

    async def _embed(self, questions: builtins.list[str]) -> np.ndarray:
        out: builtins.list[np.ndarray] = []
        batch = self.settings.kb_embed_batch
        for start in range(0, len(questions), batch):
            out.append(await self.embedder.embed_queries(questions[start : start + batch]))
        return np.concatenate(out) if out else np.zeros((0, self.embedder.dim), np.float32)

    def _question_rows(
        self,
        tenant_id: str,
        kb_id: str,
        answer_id: str,
        questions: builtins.list[str],
        vectors: np.ndarray,
    ) -> builtins.list[CuratedQuestion]:
        # Sorted ids keep the phrasings in the order given (lists order them by id).
        ids = sorted(new_id() for _ in questions)
        return [
            CuratedQuestion(
                id=qid,
                tenant_id=tenant_id,
                kb_id=kb_id,
                answer_id=answer_id,
                question=q,
                tokens=" ".join(tokens(q)),
                embedding=np.asarray(v, dtype="<f4").tobytes(),
                embedder=self.embedder.name,
            )
            for qid, q, v in zip(ids, questions, vectors, strict=True)
        ]

    async def create(
        self,
        principal: Principal,
        kb_id: str,
        *,
        questions: Sequence[str],
        answer: str,
        link: str | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        cleaned, text = _clean_questions(questions), _clean_answer(answer)
        vectors = await self._embed(cleaned)  # outside the transaction: embedding is slow
        now = utcnow()
        async with self.db.write() as s:
            kb = await self._writable_kb(s, principal, kb_id)
            row = CuratedAnswer(
                id=new_id(),
                tenant_id=kb.tenant_id,
                kb_id=kb.id,
                answer=text,
                link=link,
                enabled=enabled,
                hits=0,
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            s.add_all(self._question_rows(kb.tenant_id, kb.id, row.id, cleaned, vectors))
            kb.content_version += 1
        return curated_view(row, cleaned)

    async def update(
        self,
        principal: Principal,
        kb_id: str,
        answer_id: str,
        *,
        questions: Sequence[str] | None = None,
        answer: str | None = None,
        link: str | None = None,
        clear_link: bool = False,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        cleaned = _clean_questions(questions) if questions is not None else None
        vectors = await self._embed(cleaned) if cleaned is not None else None
        async with self.db.write() as s:
            kb = await self._writable_kb(s, principal, kb_id)
            row = await self._answer(s, kb.tenant_id, kb.id, answer_id)
            if answer is not None:
                row.answer = _clean_answer(answer)
            if link is not None or clear_link:
                row.link = link
            if enabled is not None:
                row.enabled = enabled
            if cleaned is not None and vectors is not None:
                await s.execute(delete(CuratedQuestion).where(CuratedQuestion.answer_id == row.id))
                s.add_all(self._question_rows(kb.tenant_id, kb.id, row.id, cleaned, vectors))
            row.updated_at = utcnow()
            kb.content_version += 1
            current = (await self._questions_of(s, [row.id])).get(row.id, [])
        return curated_view(row, cleaned if cleaned is not None else current)

    async def delete(self, principal: Principal, kb_id: str, answer_id: str) -> None:
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            kb = await self._writable_kb(s, principal, kb_id)
            row = await self._answer(s, kb.tenant_id, kb.id, answer_id)
            await s.execute(delete(CuratedQuestion).where(CuratedQuestion.answer_id == row.id))
            await s.delete(row)
            kb.content_version += 1

    async def import_file(
        self, principal: Principal, kb_id: str, data: bytes, format: str
    ) -> dict[str, int]:
        """Add the Q&A rows of a CSV or XLSX sheet (see ``read_qa_rows`` for the columns).
        A row whose question matches an existing phrasing updates that answer instead of
        adding a duplicate, so importing the same sheet twice changes nothing."""
        from warbler.kb.parsers.document import ParseError
        from warbler.kb.parsers.sheet import read_qa_rows

        principal.require_admin(SCOPE)
        fmt = format.lower().lstrip(".")
        if fmt not in IMPORT_FORMATS:
            raise UnsupportedType(
                f"import a CSV or XLSX file, not {format!r}", details={"formats": IMPORT_FORMATS}
            )
        try:
            rows = read_qa_rows(data, fmt)
        except ParseError as exc:
            raise InvalidRequest(exc.message, details={"field": "file"}) from None
        if len(rows) > MAX_IMPORT_ROWS:
            raise InvalidRequest(f"at most {MAX_IMPORT_ROWS} rows per import")
        pairs = [(_clean_questions(qs), _clean_answer(a)) for qs, a in rows]
        async with self.db.read() as s:
            await self._writable_kb(s, principal, kb_id)
            existing = await self._existing(s, principal.tenant_id, kb_id)
        # Embed only what is new or changed: re-importing a sheet costs no model time.
        todo = [(qs, a) for qs, a in pairs if self._unchanged(existing, qs, a) is None]
        flat = [q for qs, _ in todo for q in qs]
        vectors = await self._embed(flat)
        created = updated = 0
        now = utcnow()
        async with self.db.write() as s:
            kb = await self._writable_kb(s, principal, kb_id)
            existing = await self._existing(s, kb.tenant_id, kb.id)
            offset = 0
            for qs, text in todo:
                vecs = vectors[offset : offset + len(qs)]
                offset += len(qs)
                answer_id = next((existing[q][0] for q in qs if q in existing), None)
                if answer_id is None:
                    answer_id = new_id()
                    s.add(
                        CuratedAnswer(
                            id=answer_id,
                            tenant_id=kb.tenant_id,
                            kb_id=kb.id,
                            answer=text,
                            enabled=True,
                            hits=0,
                            created_by=principal.user_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    await s.flush()
                    created += 1
                else:
                    await s.execute(
                        update(CuratedAnswer)
                        .where(CuratedAnswer.id == answer_id)
                        .values(answer=text, updated_at=now)
                    )
                    await s.execute(
                        delete(CuratedQuestion).where(CuratedQuestion.answer_id == answer_id)
                    )
                    updated += 1
                s.add_all(self._question_rows(kb.tenant_id, kb.id, answer_id, qs, vecs))
                for q in qs:
                    existing[q] = (answer_id, text)
            if todo:
                kb.content_version += 1
        return {
            "rows": len(pairs),
            "created": created,
            "updated": updated,
            "unchanged": len(pairs) - len(todo),
        }

    async def _existing(
        self, s: AsyncSession, tenant_id: str, kb_id: str
    ) -> dict[str, tuple[str, str]]:
        """phrasing -> (answer id, answer text) over the KB's curated answers."""
        rows = await s.execute(
            select(CuratedQuestion.question, CuratedAnswer.id, CuratedAnswer.answer)
            .join(CuratedAnswer, CuratedAnswer.id == CuratedQuestion.answer_id)
            .where(CuratedAnswer.tenant_id == tenant_id, CuratedAnswer.kb_id == kb_id)
        )
        return {q: (aid, text) for q, aid, text in rows.all()}

    @staticmethod
    def _unchanged(
        existing: dict[str, tuple[str, str]], questions: builtins.list[str], answer: str
    ) -> str | None:
        """The id of an answer that already reads exactly like this row, if any."""
        ids = {existing[q][0] for q in questions if q in existing}
        if len(ids) != 1 or any(q not in existing for q in questions):
            return None
        (answer_id,) = ids
        same_answer = all(existing[q][1] == answer for q in questions)
        phrasings = sum(1 for aid, _ in existing.values() if aid == answer_id)
        return answer_id if same_answer and phrasings == len(questions) else None

    async def record_hit(self, tenant_id: str, answer_id: str) -> None:
        """Count a curated answer as served (does not change the KB's content version)."""
        async with self.db.write() as s:
            await s.execute(
                update(CuratedAnswer)
                .where(CuratedAnswer.tenant_id == tenant_id, CuratedAnswer.id == answer_id)
                .values(hits=CuratedAnswer.hits + 1, last_hit_at=utcnow())
            )

    async def reembed(self, tenant_id: str, kb_id: str) -> int:
        """Embed again the KB's phrasings stored under another model (after a change of
        embedder; ``warbler kb reindex`` calls this). The number of phrasings re-embedded."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(CuratedQuestion.id, CuratedQuestion.question).where(
                        CuratedQuestion.tenant_id == tenant_id,
                        CuratedQuestion.kb_id == kb_id,
                        CuratedQuestion.embedder != self.embedder.name,
                    )
                )
            ).all()
        if not rows:
            return 0
        vectors = await self._embed([q for _, q in rows])
        async with self.db.write() as s:
            await s.execute(
                update(CuratedQuestion),
                [
                    {"id": qid, "embedding": np.asarray(v, dtype="<f4").tobytes(),
                     "embedder": self.embedder.name}
                    for (qid, _), v in zip(rows, vectors, strict=True)
                ],
            )  # fmt: skip
            await s.execute(
                update(KnowledgeBase)
                .where(KnowledgeBase.id == kb_id)
                .values(content_version=KnowledgeBase.content_version + 1)
            )
        return len(rows)

    # -- matching -----------------------------------------------------------------------

    async def load_index(self, s: AsyncSession, tenant_id: str, kb_id: str) -> CuratedIndex:
        """The KB's enabled curated answers, ready to match; phrasings embedded by another
        model than the node's (the embedder was changed) are embedded again in memory."""
        rows = (
            await s.execute(
                select(CuratedQuestion, CuratedAnswer.answer, CuratedAnswer.link)
                .join(CuratedAnswer, CuratedAnswer.id == CuratedQuestion.answer_id)
                .where(
                    CuratedAnswer.tenant_id == tenant_id,
                    CuratedAnswer.kb_id == kb_id,
                    CuratedAnswer.enabled.is_(True),
                )
                .order_by(CuratedQuestion.answer_id, CuratedQuestion.id)
            )
        ).all()
        answers: dict[str, tuple[str, str | None, str]] = {}
        for q, answer, link in rows:
            answers.setdefault(q.answer_id, (answer, link, q.question))
        stale = [i for i, (q, _, _) in enumerate(rows) if q.embedder != self.embedder.name]
        fresh = await self._embed([rows[i][0].question for i in stale]) if stale else None
        vectors = [np.frombuffer(q.embedding, dtype="<f4") for q, _, _ in rows]
        if fresh is not None:
            for j, i in enumerate(stale):
                vectors[i] = fresh[j]
        dim = self.embedder.dim or (len(vectors[0]) if vectors else 0)
        matrix = (
            np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        )
        return CuratedIndex(
            kb_id=kb_id,
            answer_ids=[q.answer_id for q, _, _ in rows],
            questions=[q.question for q, _, _ in rows],
            matrix=matrix,
            answers=answers,
        )
