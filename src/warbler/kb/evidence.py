"""The minimum-evidence rule: when a retrieved passage is good enough to answer from.

Raw e5 cosine scores are compressed and language-biased (an unrelated Chinese passage scores
about 0.85 against a Chinese question), so the rule reads the passage's *margin*: its cosine
minus what unrelated text in its script scores for the same question
(``warbler.kb.calibration``). A passage is evidence when its margin reaches
``kb_min_dense_score``, or comes at most ``KEYWORD_MARGIN`` short of it while also holding
most of the question's keyword weight (BM25 coverage). On the demo set the default 0.07
grounds 32 of 36 answerable questions and 2 of 16 off-topic ones (docs/knowledge.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from warbler.config import Settings

# How far below kb_min_dense_score keyword agreement may still carry a passage.
KEYWORD_MARGIN = 0.03
# Share of the question's keyword weight a passage must contain to count as agreeing.
MIN_COVERAGE = 0.6
# With no dense score at all (the embedder failed), keywords must cover nearly everything.
KEYWORD_ONLY_COVERAGE = 0.8


@dataclass(frozen=True, slots=True)
class Evidence:
    min_dense: float
    dense_available: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, *, dense_available: bool = True) -> Evidence:
        return cls(settings.kb_min_dense_score, dense_available)

    def grounds(self, margin: float | None, coverage: float) -> bool:
        """``margin``: the passage's calibrated dense score (cosine minus the question's
        baseline, ``warbler.kb.calibration``), None if unknown; ``coverage``: the share of
        the question's keyword weight the passage contains (0..1)."""
        if margin is None or not self.dense_available:
            return coverage >= KEYWORD_ONLY_COVERAGE
        if margin >= self.min_dense:
            return True
        return coverage >= MIN_COVERAGE and margin >= self.min_dense - KEYWORD_MARGIN
