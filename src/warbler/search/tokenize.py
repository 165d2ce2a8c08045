"""Split Chinese and English text into search tokens, the same way for text and queries."""

from __future__ import annotations

import re

import rjieba

# Runs of CJK ideographs go to rjieba; everything else splits into Unicode words, so
# "Müller café" stays ["müller", "café"] instead of rjieba's per-letter cuts.
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+)")


def tokens(text: str) -> list[str]:
    """Lower-cased words; Chinese is cut for search (words and their sub-words), punctuation
    dropped. ``"我想申请退款"`` → ``["我", "想", "申请", "退款"]``."""
    out: list[str] = []
    for chinese, other in _RUNS.findall(text.lower()):
        if chinese:
            out.extend(tok for tok in rjieba.cut_for_search(chinese) if tok.strip())
        else:
            out.append(other)
    return out


def is_cjk(token: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in token)
