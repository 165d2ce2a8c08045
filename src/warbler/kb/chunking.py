"""Split a parsed document into chunks for retrieval: by section, paragraph and sentence.

Rules, in order of precedence:
- a chunk never crosses a section, so it has exactly one title path ("Heading > Sub");
- a chunk is at most ``size`` characters (a Chinese character counts one);
- sentences (ending in 。！？；.!?; or a line break) are never split unless one alone is
  longer than ``size``; then it is cut at a comma or space if there is one near the limit;
- a paragraph that does not fit in what is left of a chunk that is already half full starts
  the next chunk instead of being split across two;
- each chunk after the first in a section repeats the previous chunk's last whole sentences,
  up to ``overlap`` characters (characters of a cut sentence when there is no whole one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from warbler.kb.parsers.document import ParsedDocument

TITLE_SEPARATOR = " > "
PARAGRAPH_SEPARATOR = "\n\n"
_CLOSERS = re.escape("”’\"'」』）)］]")
_SENTENCE_END = re.compile(
    rf"(?:[。！？；!?;]+|…+|\.(?=[\s{_CLOSERS}]|$))[{_CLOSERS}]*[ \t]*\n*|\n+"
)
# "Mr. Smith" and "e.g. this" do not end a sentence.
_ABBREVIATIONS = frozenset(
    {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "e.g.", "i.e.", "etc.", "vs.", "no.", "fig."}
)
# Where an over-long sentence may be cut, best first: after a clause mark, then a space.
_SOFT_BREAKS = ("，", "、", "：", ",", ":", " ")


@dataclass(frozen=True, slots=True)
class Chunk:
    position: int  # 0-based order within the document
    title_path: str
    text: str


@dataclass(frozen=True, slots=True)
class _Unit:
    paragraph: int
    text: str
    fragment: bool = False  # a piece of a sentence longer than the chunk size


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing punctuation and spaces; joined they give ``text`` back."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if match.end() > start:
            out.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        out.append(text[start:])
    merged: list[str] = []
    for sentence in out:
        words = merged[-1].split() if merged else []
        if words and words[-1].lower() in _ABBREVIATIONS and not merged[-1].endswith("\n"):
            merged[-1] += sentence
        else:
            merged.append(sentence)
    return [s for s in merged if s.strip()]


def _cut(sentence: str, size: int) -> list[str]:
    """Pieces of at most ``size`` characters, cut at a soft break in the last third if any."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > size:
        window = rest[:size]
        cut = size
        for mark in _SOFT_BREAKS:
            at = window.rfind(mark)
            if at >= size * 2 // 3:
                cut = at + 1
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest.strip():
        pieces.append(rest)
    return pieces


def _units(paragraphs: tuple[str, ...], size: int) -> list[_Unit]:
    units: list[_Unit] = []
    for index, paragraph in enumerate(paragraphs):
        for sentence in split_sentences(paragraph):
            if len(sentence) <= size:
                units.append(_Unit(index, sentence))
            else:
                units.extend(_Unit(index, piece, True) for piece in _cut(sentence, size))
    return units


def _length(units: list[_Unit]) -> int:
    """An upper bound of the rendered length (rendering only strips whitespace)."""
    total = 0
    for i, unit in enumerate(units):
        total += len(unit.text)
        if i and units[i - 1].paragraph != unit.paragraph:
            total += len(PARAGRAPH_SEPARATOR)
    return total


def _render(units: list[_Unit]) -> str:
    paragraphs: list[list[str]] = []
    for i, unit in enumerate(units):
        if i == 0 or units[i - 1].paragraph != unit.paragraph:
            paragraphs.append([])
        paragraphs[-1].append(unit.text)
    return PARAGRAPH_SEPARATOR.join("".join(p).strip() for p in paragraphs).strip()


def _overlap(previous: list[_Unit], following: _Unit, size: int, overlap: int) -> list[_Unit]:
    """The tail of ``previous`` to repeat before ``following`` (both must fit in ``size``)."""
    if overlap <= 0 or not previous:
        return []
    taken: list[_Unit] = []
    for unit in reversed(previous):
        candidate = [unit, *taken]
        if _length(candidate) > overlap or _length([*candidate, following]) > size:
            break
        taken = candidate
    last = previous[-1]
    if not taken and last.fragment:
        # No whole sentence to repeat: a cut sentence continues, so repeat its last words.
        room = min(overlap, size - len(following.text) - len(PARAGRAPH_SEPARATOR))
        start = len(last.text) - room
        if room > 0 and start > 0:
            tail = last.text[start:]
            space = tail.find(" ")
            if not last.text[start - 1].isspace() and space != -1:
                tail = tail[space + 1 :]  # start at a word, not inside one
            if tail.strip():
                taken = [_Unit(last.paragraph, tail, True)]
    return taken


def _pack(units: list[_Unit], size: int, overlap: int) -> list[str]:
    paragraph_length: dict[int, int] = {}
    for unit in units:
        paragraph_length[unit.paragraph] = paragraph_length.get(unit.paragraph, 0) + len(unit.text)
    chunks: list[str] = []
    current: list[_Unit] = []
    for unit in units:
        starts_paragraph = bool(current) and current[-1].paragraph != unit.paragraph
        used = _length(current)
        full = bool(current) and _length([*current, unit]) > size
        paragraph_wont_fit = (
            starts_paragraph
            and used >= size // 2
            and used + len(PARAGRAPH_SEPARATOR) + paragraph_length[unit.paragraph] > size
        )
        if full or paragraph_wont_fit:
            chunks.append(_render(current))
            current = _overlap(current, unit, size, overlap)
        current.append(unit)
    if current:
        chunks.append(_render(current))
    return [c for c in chunks if c]


def chunk_document(document: ParsedDocument, *, size: int, overlap: int) -> list[Chunk]:
    """The document's chunks, in reading order, numbered from 0."""
    if size < 1:
        raise ValueError("size must be positive")
    overlap = max(0, min(overlap, size // 2))
    out: list[Chunk] = []
    for section in document.sections:
        path = TITLE_SEPARATOR.join(section.path)
        for text in _pack(_units(section.paragraphs, size), size, overlap):
            out.append(Chunk(len(out), path, text))
    return out
