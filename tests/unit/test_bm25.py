"""BM25 keyword search: the standard scores, Chinese tokens, and how much of a question a
passage covers."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from warbler.kb.bm25 import Bm25Index
from warbler.search.tokenize import tokens


def reference_scores(docs: list[list[str]], query: list[str], k1=1.2, b=0.75) -> list[float]:
    """Okapi BM25, written out term by term (Lucene idf)."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    out = []
    for doc in docs:
        tf = Counter(doc)
        score = 0.0
        for term in dict.fromkeys(query):
            df = sum(1 for d in docs if term in d)
            if not df or term not in tf:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avgdl))
        out.append(score)
    return out


def test_scores_match_the_okapi_formula():
    rng = random.Random(7)
    words = [f"w{i}" for i in range(40)]
    docs = [[rng.choice(words) for _ in range(rng.randint(1, 30))] for _ in range(60)]
    index = Bm25Index(docs)
    for _ in range(20):
        query = [rng.choice(words) for _ in range(rng.randint(1, 4))]
        expected = reference_scores(docs, query)
        hits = index.search(query, k=60)
        assert [h.doc for h in hits] == sorted(
            (i for i, s in enumerate(expected) if s > 0), key=lambda i: (-expected[i], i)
        )
        for hit in hits:
            assert hit.score == pytest.approx(expected[hit.doc], rel=1e-5)


def test_a_rare_word_outweighs_a_common_one():
    docs = [tokens(t) for t in (
        "the refund arrives in five days",
        "the parcel arrives tomorrow",
        "the the the the shop",
        "gift cards never expire",
    )]  # fmt: skip
    index = Bm25Index(docs)
    assert [h.doc for h in index.search(tokens("when does the refund arrive"), k=2)] == [0, 2]
    assert index.search(tokens("gift"), k=5)[0].doc == 3


def test_chinese_is_matched_by_words():
    docs = [
        tokens(t)
        for t in ("签收后三十天内可以申请退货", "快递三到五个工作日送达", "积分十二个月后失效")
    ]
    index = Bm25Index(docs)
    assert index.search(tokens("怎么申请退货"), k=3)[0].doc == 0
    assert index.search(tokens("快递几天送达"), k=3)[0].doc == 1
    assert index.search(tokens("天气"), k=3) == []  # "天" alone is not the word "天气"


def test_coverage_is_the_share_of_the_question_a_passage_holds():
    # "card" is common, "gift" rarer: a passage with only "gift" covers more of the question.
    docs = [["gift", "card", "expiry"], ["gift", "shop"], ["the", "card"]]
    docs += [["card", "x"]] * 8 + [["the", "x"]] * 12
    index = Bm25Index(docs)
    hits = {h.doc: h for h in index.search(["gift", "card", "expiry"], k=10)}
    assert hits[0].coverage == pytest.approx(1.0)
    assert 0 < hits[2].coverage < hits[1].coverage < 1.0
    # A word the index has never seen counts against every passage.
    unseen = {h.doc: h for h in index.search(["gift", "card", "expiry", "zorblax"], k=10)}
    assert unseen[0].coverage < 0.8


def test_edge_cases_return_nothing_rather_than_fail():
    assert Bm25Index([]).search(["a"], k=3) == []
    index = Bm25Index([["a"], [], ["b", "b"]])
    assert index.search([], k=3) == [] and index.search(["zzz"], k=3) == []
    assert index.search(["a"], k=0) == []
    assert [h.doc for h in index.search(["a", "b"], k=1)] in ([0], [2])
