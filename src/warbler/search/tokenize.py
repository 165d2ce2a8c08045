"""Split Chinese and English text into search tokens, the same way for text and queries."""

from __future__ import annotations

import rjieba


def tokens(text: str) -> list[str]:
    """Lower-cased words; Chinese is cut for search (短语 and their sub-words), punctuation
    dropped. ``"我想申请退款"`` → ``["我", "想", "申请", "退款"]``."""
    out = []
    for tok in rjieba.cut_for_search(text.lower()):
        tok = tok.strip()
        if tok and any(ch.isalnum() for ch in tok):
            out.append(tok)
    return out


def is_cjk(token: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in token)
