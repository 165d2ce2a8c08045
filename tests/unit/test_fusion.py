"""Reciprocal rank fusion of keyword and vector rankings."""

from __future__ import annotations

import pytest

from warbler.kb.fusion import RRF_K, reciprocal_rank_fusion


def test_items_found_by_both_searches_rank_above_items_found_by_one():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "d", "a"]])
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 3))
    assert scores["d"] == pytest.approx(1 / (RRF_K + 2))


def test_ties_keep_the_order_items_first_appeared_in():
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "x"]])
    assert [item for item, _ in fused] == ["x", "y"]
    assert reciprocal_rank_fusion([[], []]) == []


def test_a_smaller_constant_rewards_the_top_ranks_more():
    rankings = [["a", "b", "c", "d"], ["d", "c", "b", "a"], ["a"]]
    assert reciprocal_rank_fusion(rankings, k=1)[0][0] == "a"
    steep, flat = (
        dict(reciprocal_rank_fusion(rankings, k=1)),
        dict(reciprocal_rank_fusion(rankings)),
    )
    assert steep["a"] / steep["c"] > flat["a"] / flat["c"]
