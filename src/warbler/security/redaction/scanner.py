"""One scan of a text: the built-in detectors a policy enables, its patterns and keywords,
with overlapping findings resolved (the longest wins; on a tie, the earlier detector)."""

from __future__ import annotations

from collections.abc import Sequence

from warbler.security.redaction.custom import Keywords, Pattern
from warbler.security.redaction.detectors import DETECTORS, Finding, find_builtin, normalise

KEYWORD_LABEL = "KEYWORD"


class Scanner:
    def __init__(
        self,
        detectors: Sequence[str] = DETECTORS,
        patterns: Sequence[Pattern] = (),
        keywords: Sequence[str] = (),
    ) -> None:
        # Kept in the built-in priority order whatever order the policy lists them in.
        self.detectors = tuple(d for d in DETECTORS if d in set(detectors))
        self.patterns = list(patterns)
        self.keywords = Keywords(keywords)

    @property
    def empty(self) -> bool:
        return not (self.detectors or self.patterns or self.keywords.words)

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order. Raises ``PatternTimeout``."""
        if not text or self.empty:
            return []
        found = find_builtin(text, self.detectors)
        plain = normalise(text)
        for pattern in self.patterns:
            for start, end, value in pattern.finditer(plain):
                found.append(
                    Finding(f"pattern:{pattern.name}", pattern.label, start, end,
                            text[start:end], f"{pattern.label}:{value}")
                )  # fmt: skip
        for start, end, value in self.keywords.finditer(text):
            found.append(
                Finding("keyword", KEYWORD_LABEL, start, end, text[start:end],
                        f"{KEYWORD_LABEL}:{value}")
            )  # fmt: skip
        return resolve(found)

    def mask(self, text: str) -> str:
        """``text`` with each finding replaced by its bare label (``[PHONE]``): for logs and
        embeddings, where nothing is restored and numbering would only vary."""
        findings = self.find(text)
        if not findings:
            return text
        parts: list[str] = []
        at = 0
        for f in findings:
            parts += [text[at : f.start], f"[{f.label}]"]
            at = f.end
        parts.append(text[at:])
        return "".join(parts)


def _rank(detector: str) -> int:
    if detector in DETECTORS:
        return DETECTORS.index(detector)
    return len(DETECTORS) + (0 if detector.startswith("pattern:") else 1)


def resolve(found: list[Finding]) -> list[Finding]:
    """Keep the longest of overlapping findings (ties: the higher-priority detector)."""
    ordered = sorted(found, key=lambda f: (-(f.end - f.start), _rank(f.detector), f.start))
    taken: list[Finding] = []
    for f in ordered:
        if all(f.end <= t.start or f.start >= t.end for t in taken):
            taken.append(f)
    return sorted(taken, key=lambda f: f.start)
