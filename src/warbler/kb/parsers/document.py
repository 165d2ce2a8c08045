"""What every parser returns: a title and sections (heading path + paragraphs), and ParseError."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE = re.compile(r"\s+")
# A line break inside Chinese text is layout, not a word boundary: join without a space.
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) (?=[{_CJK}])")


class ParseError(Exception):
    """A document could not be read; ``message`` says why in words a user understands."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Section:
    """Paragraphs under one heading path, e.g. ``("Returns", "Refunds")``. Chunks never
    cross sections, so each chunk has exactly one title path to cite."""

    path: tuple[str, ...]
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    sections: tuple[Section, ...]

    @property
    def chars(self) -> int:
        return sum(len(p) for s in self.sections for p in s.paragraphs)


def clean_inline(text: str) -> str:
    """Collapse whitespace to single spaces, and drop the spaces a line wrap left between
    two Chinese characters."""
    return _CJK_GAP.sub("", _SPACE.sub(" ", text)).strip()


def join_lines(lines: list[str]) -> str:
    """Re-flow wrapped lines into one paragraph (no space between Chinese characters)."""
    return clean_inline(" ".join(line.strip() for line in lines))


@dataclass
class DocumentBuilder:
    """Collects headings and paragraphs in reading order and builds the document.

    If the document's first heading is its only level-1 heading, it is the title and is
    left out of every title path (so citations say "Refunds", not "FAQ > Refunds").
    """

    fallback_title: str
    title: str = ""
    _events: list[tuple[int, str]] = field(default_factory=list)  # (level, text); 0 = paragraph

    def heading(self, level: int, text: str) -> None:
        text = clean_inline(text)
        if text:
            self._events.append((max(1, min(level, 6)), text))

    def paragraph(self, text: str, *, keep_lines: bool = False) -> None:
        text = text.strip() if keep_lines else clean_inline(text)
        if text:
            self._events.append((0, text))

    def section_break(self) -> None:
        """End the current section without a heading (a Q&A row stands alone)."""
        self._events.append((-1, ""))

    def build(self) -> ParsedDocument:
        events = self._events
        headings = [(i, level, text) for i, (level, text) in enumerate(events) if level > 0]
        title = self.title
        skip = -1
        level_ones = [h for h in headings if h[1] == 1]
        if headings and len(level_ones) == 1 and headings[0][1] == 1:
            skip = headings[0][0]
            title = title or headings[0][2]
        sections: list[Section] = []
        stack: list[tuple[int, str]] = []
        paragraphs: list[str] = []

        def close() -> None:
            if paragraphs:
                sections.append(Section(tuple(t for _, t in stack), tuple(paragraphs)))
                paragraphs.clear()

        for i, (level, text) in enumerate(events):
            if level == 0:
                paragraphs.append(text)
            elif level < 0:
                close()
            else:
                close()
                if i == skip:
                    continue
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text))
        close()
        if not sections:
            raise ParseError("no text found in the document")
        return ParsedDocument(clean_inline(title) or self.fallback_title, tuple(sections))
