"""Retrieval evaluation: run a set of questions with known answers through the retriever and
measure recall@k, MRR, abstention and latency (``warbler kb eval FILE``).

One JSON object per line::

    {"question": "退货期限是多久？", "expected_sources": ["returns.md", "zh-returns.md"]}
    {"question": "I forgot my password", "expected_curated": "<answer text or id>"}
    {"question": "What is the capital of France?", "expected_sources": []}

A passage case is recalled at k when a passage from any expected source is among the top k
(a source matches a document's ``source`` exactly or by its last path part, so "returns.md"
matches "docs/returns.md"); its reciprocal rank is 1 / the rank of the first such passage.
A curated case is right when the curated answer served has that id or that exact text. An
empty ``expected_sources`` marks a question the KB cannot answer: right when retrieval says
it is not grounded and serves no curated answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.kb.retrieve import Retriever
from warbler.kb.types import Retrieval
from warbler.store.db import Database
from warbler.store.models_kb import KbDocument

MAX_CASES = 10_000


@dataclass(frozen=True, slots=True)
class EvalCase:
    question: str
    expected_sources: tuple[str, ...] | None = None  # () = the KB cannot answer it
    expected_curated: str | None = None

    @property
    def kind(self) -> str:
        if self.expected_curated is not None:
            return "curated"
        return "passages" if self.expected_sources else "unanswerable"


def parse_cases(text: str) -> list[EvalCase]:
    """The cases of a JSONL text; blank lines and lines starting with # are skipped."""
    cases: list[EvalCase] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"line {number}: not JSON ({exc.msg})") from None
        question = item.get("question") if isinstance(item, dict) else None
        if not isinstance(question, str) or not question.strip():
            raise InvalidRequest(f'line {number}: needs a "question" string')
        sources = item.get("expected_sources")
        curated = item.get("expected_curated")
        if (sources is None) == (curated is None):
            raise InvalidRequest(
                f'line {number}: give exactly one of "expected_sources" or "expected_curated"'
            )
        if sources is not None and (
            not isinstance(sources, list) or not all(isinstance(x, str) for x in sources)
        ):
            raise InvalidRequest(f'line {number}: "expected_sources" is a list of source names')
        if curated is not None and (not isinstance(curated, str) or not curated.strip()):
            raise InvalidRequest(f'line {number}: "expected_curated" is an answer text or id')
        cases.append(
            EvalCase(
                question=question,
                expected_sources=tuple(sources) if sources is not None else None,
                expected_curated=curated.strip() if curated is not None else None,
            )
        )
        if len(cases) > MAX_CASES:
            raise InvalidRequest(f"at most {MAX_CASES} questions per evaluation")
    if not cases:
        raise InvalidRequest("the file holds no questions")
    return cases


def source_matches(expected: str, source: str) -> bool:
    return source == expected or source.rsplit("/", 1)[-1] == expected.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: EvalCase
    ok: bool  # recalled at k / the right curated answer / rightly not grounded
    rank: int | None  # passage cases: rank of the first passage from an expected source
    grounded: bool
    curated: str | None  # the curated answer served, if any (its text)
    sources: tuple[str, ...]  # sources of the passages, in rank order
    latency_ms: float


@dataclass
class EvalReport:
    top_k: int
    results: list[CaseResult] = field(default_factory=list)

    def of(self, kind: str) -> list[CaseResult]:
        return [r for r in self.results if r.case.kind == kind]

    @property
    def recall_at_k(self) -> float | None:
        cases = self.of("passages")
        return sum(r.ok for r in cases) / len(cases) if cases else None

    @property
    def mrr(self) -> float | None:
        cases = self.of("passages")
        return sum(1 / r.rank for r in cases if r.rank) / len(cases) if cases else None

    def accuracy(self, kind: str) -> float | None:
        cases = self.of(kind)
        return sum(r.ok for r in cases) / len(cases) if cases else None

    def grounded_rate(self, kind: str) -> float | None:
        cases = self.of(kind)
        return sum(r.grounded for r in cases) / len(cases) if cases else None

    def latency(self, percentile: float) -> float:
        return float(np.percentile([r.latency_ms for r in self.results], percentile))

    def summary(self) -> dict[str, float | int | None]:
        return {
            "questions": len(self.results),
            "passage_questions": len(self.of("passages")),
            f"recall_at_{self.top_k}": self.recall_at_k,
            "mrr": self.mrr,
            "grounded_rate": self.grounded_rate("passages"),
            "curated_questions": len(self.of("curated")),
            "curated_accuracy": self.accuracy("curated"),
            "unanswerable_questions": len(self.of("unanswerable")),
            "abstention_accuracy": self.accuracy("unanswerable"),
            "latency_p50_ms": self.latency(50),
            "latency_p95_ms": self.latency(95),
        }


class Evaluator:
    def __init__(self, db: Database, retriever: Retriever) -> None:
        self.db = db
        self.retriever = retriever
        self._sources: dict[str, str] = {}

    async def _source_names(self, tenant_id: str, document_ids: Sequence[str]) -> list[str]:
        missing = [d for d in set(document_ids) if d not in self._sources]
        if missing:
            async with self.db.read() as s:
                rows = await s.execute(
                    select(KbDocument.id, KbDocument.source).where(
                        KbDocument.tenant_id == tenant_id, KbDocument.id.in_(missing)
                    )
                )
                self._sources.update({doc_id: source for doc_id, source in rows.all()})
        return [self._sources.get(d, "") for d in document_ids]

    async def run(
        self,
        principal: Principal,
        cases: Sequence[EvalCase],
        *,
        kb_ids: Sequence[str] | None = None,
        top_k: int | None = None,
        on_case: Callable[[CaseResult], None] | None = None,
    ) -> EvalReport:
        """Ask every question as ``principal``; curated hit counts are left alone."""
        report = EvalReport(top_k=top_k or self.retriever.settings.kb_top_k)
        for case in cases:
            started = time.perf_counter()
            found = await self.retriever.retrieve(
                principal, case.question, kb_ids=kb_ids, top_k=report.top_k, record_hit=False
            )
            latency = (time.perf_counter() - started) * 1000
            result = await self._judge(principal.tenant_id, case, found, latency)
            report.results.append(result)
            if on_case is not None:
                on_case(result)
        return report

    async def _judge(
        self, tenant_id: str, case: EvalCase, found: Retrieval, latency: float
    ) -> CaseResult:
        sources = await self._source_names(tenant_id, [p.document_id for p in found.passages])
        curated = found.curated
        rank = None
        if case.kind == "curated":
            expected = case.expected_curated
            ok = curated is not None and expected in (curated.answer_id, curated.answer.strip())
        elif case.kind == "passages":
            assert case.expected_sources is not None
            rank = next(
                (
                    i
                    for i, source in enumerate(sources, start=1)
                    if any(source_matches(e, source) for e in case.expected_sources)
                ),
                None,
            )
            ok = rank is not None
        else:
            ok = not found.grounded and curated is None
        return CaseResult(
            case=case,
            ok=ok,
            rank=rank,
            grounded=found.grounded,
            curated=curated.answer if curated else None,
            sources=tuple(sources),
            latency_ms=latency,
        )
