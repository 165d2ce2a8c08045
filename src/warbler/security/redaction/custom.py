"""A tenant's own patterns (regular expressions) and keywords, checked before they are saved.

Patterns run on the ``regex`` module with a timeout (``PATTERN_TIMEOUT_SECONDS`` per pattern
and text): Python's ``re`` cannot be interrupted, and a pattern with nested quantifiers
(``(a+)+$``) can take exponential time. A pattern is refused when it does not compile, is
longer than ``MAX_PATTERN_CHARS``, matches the empty string, or already times out on the
probe texts (long runs of its own characters, where backtracking explodes). At run time a
timeout fails closed: the text is not sent (``PatternTimeout``).

Keywords are literal text, case-insensitive; one that starts or ends with a Latin letter or
digit matches whole words only ("Apollo" not inside "Apollonia"); Chinese keywords match
anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from warbler.errors import InvalidRequest

MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 500
MAX_KEYWORDS = 500
MAX_KEYWORD_CHARS = 100
PATTERN_TIMEOUT_SECONDS = 0.1
PROBE_TIMEOUT_SECONDS = 0.05
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,23}$")
# Names of the built-in labels: a pattern may not pose as one.
RESERVED = frozenset({"PHONE", "EMAIL", "ID_NUMBER", "BANK_CARD", "IP", "KEYWORD"})


class PatternTimeout(Exception):
    """A tenant pattern took longer than ``PATTERN_TIMEOUT_SECONDS`` on a text."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the redaction pattern {name!r} timed out")
        self.name = name


@dataclass(frozen=True, slots=True)
class Pattern:
    name: str  # also the placeholder's label, upper-cased: [EMPLOYEE_ID_1]
    source: str
    compiled: Any  # a regex.Pattern

    @property
    def label(self) -> str:
        return self.name.upper()

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        try:
            for m in self.compiled.finditer(text, timeout=PATTERN_TIMEOUT_SECONDS):
                if m.end() > m.start():
                    yield m.start(), m.end(), m.group()
        except TimeoutError:
            raise PatternTimeout(self.name) from None


def _probes(source: str) -> list[str]:
    """Texts that make a backtracking pattern explode: long runs of the characters the
    pattern itself names, ending in a character it does not expect."""
    chars = {c for c in source if c.isalnum() or c in " @.-_:/"}
    chars |= {"a", "1", " ", "中"}
    return [c * 2000 + "\x00" for c in sorted(chars)[:24]] + ["a1 " * 700 + "\x00"]


def compile_pattern(name: str, source: str, field: str, *, probe: bool = True) -> Pattern:
    """The checked pattern, or ``InvalidRequest`` naming ``field`` and what is wrong.
    ``probe=False``: skip the backtracking probes (a pattern that passed them when saved)."""
    if not isinstance(source, str) or not source:
        raise InvalidRequest(f"{field}: the pattern is empty", details={"field": field})
    if len(source) > MAX_PATTERN_CHARS:
        raise InvalidRequest(
            f"{field}: a pattern has at most {MAX_PATTERN_CHARS} characters",
            details={"field": field},
        )
    try:
        compiled = regex.compile(source, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise InvalidRequest(
            f"{field}: the pattern does not compile: {exc}", details={"field": field}
        ) from None
    if compiled.search("") is not None:
        raise InvalidRequest(
            f"{field}: the pattern matches the empty string", details={"field": field}
        )
    for text in _probes(source) if probe else ():
        try:
            for _ in compiled.finditer(text, timeout=PROBE_TIMEOUT_SECONDS):
                pass
        except TimeoutError:
            raise InvalidRequest(
                f"{field}: the pattern backtracks catastrophically (it timed out on a "
                "2,000-character probe); avoid nested quantifiers like (a+)+",
                details={"field": field},
            ) from None
    return Pattern(name, source, compiled)


def compile_patterns(items: Sequence[dict[str, Any]], *, probe: bool = True) -> list[Pattern]:
    if len(items) > MAX_PATTERNS:
        raise InvalidRequest(f"at most {MAX_PATTERNS} patterns", details={"field": "patterns"})
    out: list[Pattern] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        name = str(item.get("name", ""))
        if not _NAME.match(name):
            raise InvalidRequest(
                f"patterns[{i}].name: a letter, then letters, digits or _ (at most 24)",
                details={"field": f"patterns[{i}].name"},
            )
        if name.upper() in RESERVED or name.upper() in seen:
            raise InvalidRequest(
                f"patterns[{i}].name: {name!r} is taken", details={"field": f"patterns[{i}].name"}
            )
        seen.add(name.upper())
        field = f"patterns[{i}].pattern"
        out.append(compile_pattern(name, item.get("pattern", ""), field, probe=probe))
    return out


def clean_keywords(items: Sequence[str]) -> list[str]:
    """Stripped, de-duplicated (case-insensitively), checked."""
    if len(items) > MAX_KEYWORDS:
        raise InvalidRequest(f"at most {MAX_KEYWORDS} keywords", details={"field": "keywords"})
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        word = str(raw).strip()
        if not word or len(word) > MAX_KEYWORD_CHARS:
            raise InvalidRequest(
                f"keywords[{i}]: 1 to {MAX_KEYWORD_CHARS} characters",
                details={"field": f"keywords[{i}]"},
            )
        if word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(word)
    return out


class Keywords:
    """Every keyword in one compiled alternation, longest first."""

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        parts = []
        for word in sorted(self.words, key=len, reverse=True):
            part = re.escape(word)
            if word[0].isascii() and word[0].isalnum():
                part = r"(?<![0-9A-Za-z])" + part
            if word[-1].isascii() and word[-1].isalnum():
                part += r"(?![0-9A-Za-z])"
            parts.append(part)
        self._re = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        if self._re is None:
            return
        for m in self._re.finditer(text):
            yield m.start(), m.end(), m.group().casefold()
