"""BM25 keyword search over pre-split tokens, in memory (eager sparse scoring with numpy).

Every (term, document) weight is computed once when the index is built and stored in a
compressed sparse row layout, so a query only adds up a few slices of an array: at 100k
chunks a query takes about a millisecond (see BENCHMARKS.md). Chinese arrives already cut
by rjieba (``warbler.search.tokenize``), so the index itself is language-agnostic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class KeywordHit:
    doc: int  # position of the document in the list the index was built from
    score: float
    # Share of the query's term weight (idf) that this document contains, 0..1: how much
    # of what the question is about the passage actually mentions.
    coverage: float


class Bm25Index:
    """Okapi BM25 with Lucene's always-positive idf."""

    def __init__(self, docs: Iterable[Sequence[str]], *, k1: float = 1.2, b: float = 0.75):
        self.k1, self.b = k1, b
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        doc_ids: list[int] = []
        freqs: list[int] = []
        lengths: list[int] = []
        for n, doc in enumerate(docs):
            lengths.append(len(doc))
            for term, count in Counter(doc).items():
                term_ids.append(vocab.setdefault(term, len(vocab)))
                doc_ids.append(n)
                freqs.append(count)
        self.vocab = vocab
        self.size = len(lengths)
        terms = np.asarray(term_ids, dtype=np.int64)
        order = np.argsort(terms, kind="stable")
        self._docs: npt.NDArray[np.int32] = np.asarray(doc_ids, dtype=np.int32)[order]
        df = np.bincount(terms, minlength=len(vocab))
        self._indptr = np.concatenate(([0], np.cumsum(df))).astype(np.int64)
        self._idf = self.idf_of(df.astype(np.float64))
        dl = np.asarray(lengths, dtype=np.float64)
        avgdl = float(dl.mean()) if self.size and dl.sum() else 1.0
        tf = np.asarray(freqs, dtype=np.float64)[order]
        norm = k1 * (1.0 - b + b * dl[self._docs] / avgdl)
        idf_per_entry = np.repeat(self._idf, df)
        self._weights = (idf_per_entry * tf * (k1 + 1.0) / (tf + norm)).astype(np.float32)

    def idf_of(self, df: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.log1p((self.size - df + 0.5) / (df + 0.5))

    def search(self, query: Sequence[str], k: int) -> list[KeywordHit]:
        """The ``k`` best documents containing at least one query term, best first."""
        if not self.size or k <= 0:
            return []
        terms = list(dict.fromkeys(query))  # a repeated word counts once
        known = [self.vocab[t] for t in terms if t in self.vocab]
        if not known:
            return []
        # Words the index has never seen still count in the question's total weight: a
        # passage that matches only "the" of "the zorblax warranty" covers little of it.
        unseen_idf = math.log1p((self.size + 0.5) / 0.5)
        total_idf = float(self._idf[known].sum()) + unseen_idf * (len(terms) - len(known))
        scores = np.zeros(self.size, dtype=np.float32)
        matched = np.zeros(self.size, dtype=np.float32)
        for t in known:
            lo, hi = self._indptr[t], self._indptr[t + 1]
            docs = self._docs[lo:hi]
            scores[docs] += self._weights[lo:hi]
            matched[docs] += self._idf[t]
        hits = np.flatnonzero(scores)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        hits = hits[np.argsort(-scores[hits], kind="stable")]
        return [
            KeywordHit(
                int(d), float(scores[d]), float(matched[d]) / total_idf if total_idf else 0.0
            )
            for d in hits
        ]
