"""Markdown: ATX (#) and setext headings build the title path; fenced code stays verbatim."""

from __future__ import annotations

import re

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, join_lines
from warbler.kb.parsers.text import decode_text

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"`([^`]+)`")
_FRONT_TITLE = re.compile(r"^title:\s*[\"']?(.*?)[\"']?\s*$", re.MULTILINE)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def _inline(text: str) -> str:
    """Keep what a reader sees: link and image text, not their URLs, HTML tags, bold or
    code markers."""
    text = _HTML_TAG.sub("", _LINK.sub(r"\1", _IMAGE.sub(r"\1", text)))
    return _CODE.sub(r"\1", _STRONG.sub(r"\2", text))


def parse_markdown(data: bytes, fallback_title: str) -> ParsedDocument:
    text = decode_text(data, "Markdown")
    builder = DocumentBuilder(fallback_title)
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        # YAML front matter: take its title, skip the rest.
        for end in range(1, len(lines)):
            if lines[end].strip() in ("---", "..."):
                found = _FRONT_TITLE.search("\n".join(lines[1:end]))
                if found:
                    builder.title = found.group(1)
                lines = lines[end + 1 :]
                break
    block: list[str] = []

    def flush() -> None:
        if block:
            builder.paragraph(_inline(join_lines(block)))
            block.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker, code = fence.group(1), []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(marker):
                code.append(lines[i])
                i += 1
            builder.paragraph("\n".join(code), keep_lines=True)
            i += 1
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            builder.heading(len(atx.group(1)), _inline(atx.group(2) or ""))
        elif _SETEXT.match(line) and len(block) == 1 and line.strip():
            # "Title\n=====" is a heading; a "---" after a blank line is a rule (below).
            heading = block.pop()
            builder.heading(1 if line.strip()[0] == "=" else 2, _inline(heading))
        elif not line.strip() or re.fullmatch(r" {0,3}([-*_])( *\1){2,} *", line):
            flush()
        elif _LIST_ITEM.match(line):
            # Each list item is its own paragraph, so a long list can be split between items.
            flush()
            block.append(_LIST_ITEM.sub("", line, count=1))
        else:
            block.append(line.lstrip("> ").rstrip() if line.lstrip().startswith(">") else line)
        i += 1
    flush()
    return builder.build()
