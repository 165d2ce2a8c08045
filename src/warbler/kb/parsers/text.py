"""Plain text: decode (UTF-8, else GB18030 as Chinese Windows tools write it), split paragraphs."""

from __future__ import annotations

import re

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, ParseError, join_lines

_BLANK_LINES = re.compile(r"\n\s*\n")


def decode_text(data: bytes, what: str = "text") -> str:
    """The text of ``data``; a file with NUL bytes or neither UTF-8 nor GB18030 is refused."""
    if b"\x00" in data[:8192]:
        raise ParseError(f"could not read {what}: it looks like a binary file")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    raise ParseError(f"could not read {what}: it is neither UTF-8 nor GB18030 encoded")


def paragraphs_of(text: str) -> list[str]:
    """Blank-line separated blocks, each re-flowed into one line."""
    return [join_lines(block.split("\n")) for block in _BLANK_LINES.split(text) if block.strip()]


def parse_text(data: bytes, fallback_title: str) -> ParsedDocument:
    builder = DocumentBuilder(fallback_title)
    for paragraph in paragraphs_of(decode_text(data)):
        builder.paragraph(paragraph)
    return builder.build()
