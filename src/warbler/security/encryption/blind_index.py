"""The blind search index: what ``message_search`` stores instead of words.

Each search token becomes a keyed hash (HMAC-SHA256 under the tenant's *search* key,
truncated to 64 bits, written as 16 letters a–p so every full-text tokenizer keeps it whole).
A query's words are hashed the same way, so equal words still match while the index holds
no word. English prefix search ("refund" finds "refunds") survives by also indexing each
word's prefixes of 3 to ``MAX_PREFIX`` characters, in their own hash domain.

What it leaks to someone who reads the index: which messages share a word (or a prefix), how
many distinct words a message has, and how often a hash occurs in the tenant (frequency
analysis can guess common words). Not the words, their order or their counts in a message
(terms are de-duplicated and sorted); nothing across tenants (each has its own key).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from warbler.search.tokenize import is_cjk

MIN_PREFIX = 3
MAX_PREFIX = 16
_DIGEST_BYTES = 8
# Hex digits 0-9a-f written as the letters a-p: a term is one plain word to any tokenizer.
_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_WORD = b"w\x00"  # a whole word
_PREFIX = b"p\x00"  # a word's prefix (what an English query word matches)


def _term(key: bytes, domain: bytes, text: str) -> str:
    digest = hmac.digest(key, domain + text.encode(), "sha256")[:_DIGEST_BYTES]
    return digest.hex().translate(_HEX_TO_LETTERS)


def _whole_word_only(word: str) -> bool:
    # As before blind indexing: Chinese tokens are already words and sub-words, and very
    # short words would match too much as prefixes.
    return is_cjk(word) or len(word) < MIN_PREFIX


def index_terms(words: Iterable[str], key: bytes) -> list[str]:
    """The hashed terms to index for a message's search tokens (de-duplicated, sorted)."""
    terms: set[str] = set()
    for word in set(words):
        if _whole_word_only(word):
            terms.add(_term(key, _WORD, word))
            continue
        for end in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
            terms.add(_term(key, _PREFIX, word[:end]))
        if len(word) > MAX_PREFIX:
            terms.add(_term(key, _WORD, word))
    return sorted(terms)


def query_term(word: str, key: bytes) -> str:
    """The hashed term a query word must match: a whole word for Chinese and short words,
    a prefix for other words up to ``MAX_PREFIX`` characters, a whole word beyond."""
    if _whole_word_only(word) or len(word) > MAX_PREFIX:
        return _term(key, _WORD, word)
    return _term(key, _PREFIX, word)
