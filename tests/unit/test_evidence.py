"""The minimum-evidence rule and the script a passage is calibrated by."""

from __future__ import annotations

from warbler.kb.calibration import CJK, LATIN, script_of
from warbler.kb.evidence import KEYWORD_MARGIN, Evidence


def test_a_passage_is_evidence_by_margin_or_by_margin_and_keywords():
    rule = Evidence(min_dense=0.07)
    assert rule.grounds(0.07, coverage=0.0)
    assert not rule.grounds(0.069, coverage=0.0)
    # Most of the question's keywords carry a passage a little short of the margin, not far.
    assert rule.grounds(0.07 - KEYWORD_MARGIN + 0.001, coverage=0.7)
    assert not rule.grounds(0.07 - KEYWORD_MARGIN - 0.001, coverage=1.0)
    assert not rule.grounds(0.065, coverage=0.3)


def test_without_a_dense_score_only_nearly_complete_keyword_matches_count():
    rule = Evidence(min_dense=0.07, dense_available=False)
    assert rule.grounds(None, coverage=0.9)
    assert not rule.grounds(None, coverage=0.6)
    assert not Evidence(min_dense=0.07).grounds(None, coverage=0.5)


def test_passages_are_calibrated_by_the_script_they_are_written_in():
    assert script_of(["签收", "后", "三十天", "内", "退货"]) == CJK
    assert script_of(["gift", "cards", "expire"]) == LATIN
    assert script_of(["plus", "会员", "每月", "十五", "元"]) == CJK
    assert script_of(["the", "iphone", "15", "pro", "max", "保修"]) == LATIN
    assert script_of([]) == LATIN
