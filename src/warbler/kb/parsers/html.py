"""HTML: h1–h6 build the title path; block elements become paragraphs; chrome is dropped."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, ParseError, clean_inline
from warbler.kb.parsers.text import decode_text

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "svg", "canvas", "iframe", "nav", "footer",
     "aside", "form", "button", "select", "head", "-comment"}
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    {"address", "article", "blockquote", "body", "dd", "details", "dialog", "div", "dl", "dt",
     "fieldset", "figcaption", "figure", "header", "hgroup", "hr", "li", "main", "ol", "p",
     "section", "summary", "ul", "caption", "html"}
)  # fmt: skip


def _charset_hint(data: bytes) -> str | None:
    head = data[:2048].lower()
    for name in (b"gb2312", b"gbk", b"gb18030"):
        if b"charset=" + name in head or b'charset="' + name in head:
            return "gb18030"
    return None


class _Walker:
    def __init__(self, builder: DocumentBuilder) -> None:
        self.builder = builder
        self.inline: list[str] = []

    def flush(self) -> None:
        if self.inline:
            self.builder.paragraph("".join(self.inline))
            self.inline.clear()

    def walk(self, node: LexborNode) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.inline.append(child.text(deep=False))
            elif tag in _SKIP:
                continue
            elif tag in _HEADINGS:
                self.flush()
                self.builder.heading(_HEADINGS[tag], child.text(separator=" "))
            elif tag == "br":
                self.inline.append("\n")
            elif tag == "pre":
                self.flush()
                self.builder.paragraph(child.text(), keep_lines=True)
            elif tag == "table":
                self.flush()
                self.table(child)
            elif tag in _BLOCKS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)

    def table(self, table: LexborNode) -> None:
        # One paragraph per row, cells joined: a row stays together when chunked.
        for row in table.css("tr"):
            cells = [clean_inline(c.text(separator=" ")) for c in row.css("th, td")]
            self.builder.paragraph(" | ".join(c for c in cells if c))


def parse_html(data: bytes, fallback_title: str) -> ParsedDocument:
    hinted = _charset_hint(data)
    try:
        text = data.decode(hinted) if hinted else decode_text(data, "HTML")
    except UnicodeDecodeError as exc:
        raise ParseError(f"could not read HTML: {exc}") from None
    tree = LexborHTMLParser(text)
    builder = DocumentBuilder(fallback_title)
    title = tree.css_first("title")
    if title is not None:
        builder.title = title.text()
    root = tree.body or tree.root
    if root is None:
        raise ParseError("no text found in the document")
    walker = _Walker(builder)
    walker.walk(root)
    walker.flush()
    return builder.build()
