"""A tenant's redaction policy: mode, built-in detectors, patterns, keywords, restore.

- ``redact`` (the default): personal data is replaced by placeholders before any text goes
  to an external model; the answer gets the values back (``restore``).
- ``block``: a question holding personal data is refused before anything is sent; the rest
  of what is sent (history, knowledge passages, tool results) is redacted as above.
- ``allow``: text is sent as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from warbler.errors import InvalidRequest
from warbler.security.redaction.custom import clean_keywords, compile_patterns
from warbler.security.redaction.detectors import DETECTORS
from warbler.security.redaction.scanner import Scanner

Mode = Literal["redact", "block", "allow"]
MODES: tuple[Mode, ...] = ("redact", "block", "allow")


@dataclass(frozen=True, slots=True)
class Policy:
    mode: Mode = "redact"
    detectors: tuple[str, ...] = DETECTORS
    patterns: tuple[dict[str, str], ...] = ()  # {"name", "pattern"}
    keywords: tuple[str, ...] = ()
    restore: bool = True
    custom: bool = False  # False: the tenant has no policy of its own (the defaults apply)
    updated_at: datetime | None = None
    _scanner: list[Scanner] = field(default_factory=list, compare=False, repr=False)

    def scanner(self) -> Scanner:
        """The compiled scanner (patterns were probed when saved; not again here)."""
        if not self._scanner:
            patterns = compile_patterns(list(self.patterns), probe=False)
            self._scanner.append(Scanner(self.detectors, patterns, self.keywords))
        return self._scanner[0]

    def view(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "detectors": list(self.detectors),
            "patterns": [dict(p) for p in self.patterns],
            "keywords": list(self.keywords),
            "restore": self.restore,
            "default": not self.custom,
            "available_detectors": list(DETECTORS),
            "updated_at": self.updated_at,
        }


def checked(
    *,
    mode: str,
    detectors: Sequence[str] | None,
    patterns: Sequence[dict[str, Any]] | None,
    keywords: Sequence[str] | None,
    restore: bool,
) -> Policy:
    """A policy from an admin's input, every part validated (``InvalidRequest`` names the
    field): unknown detectors, patterns that do not compile or backtrack, oversized lists."""
    if mode not in MODES:
        raise InvalidRequest(f"mode is one of {', '.join(MODES)}", details={"field": "mode"})
    chosen = list(DETECTORS) if detectors is None else list(detectors)
    unknown = [d for d in chosen if d not in DETECTORS]
    if unknown:
        raise InvalidRequest(
            f"unknown detectors {unknown}; available: {', '.join(DETECTORS)}",
            details={"field": "detectors"},
        )
    items = [{"name": str(p.get("name", "")), "pattern": p.get("pattern", "")}
             for p in patterns or []]  # fmt: skip
    compiled = compile_patterns(items)
    return Policy(
        mode=mode,
        detectors=tuple(d for d in DETECTORS if d in set(chosen)),
        patterns=tuple({"name": p.name, "pattern": p.source} for p in compiled),
        keywords=tuple(clean_keywords(list(keywords or []))),
        restore=restore,
        custom=True,
    )
