"""Reciprocal rank fusion: merge ranked lists whose scores are not comparable."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

# The constant from Cormack, Clarke and Büttcher (2009): large enough that the first few
# ranks of each list count about the same, so neither list dominates by its top hit alone.
RRF_K = 60


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], k: int = RRF_K
) -> list[tuple[K, float]]:
    """Items of every ranking, scored by the sum of ``1 / (k + rank)`` (rank from 1), best
    first; ties keep the order in which the items first appeared."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])
