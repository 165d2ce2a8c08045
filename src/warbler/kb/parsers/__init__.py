"""Document parsers, one module per format; ``parse`` picks one by format name.

Every parser turns raw bytes into a ``ParsedDocument`` (title, sections with heading paths and
paragraphs) and raises nothing but ``ParseError``, whose message says what is wrong.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from warbler.kb.parsers.document import ParsedDocument, ParseError, Section
from warbler.kb.parsers.docx import parse_docx
from warbler.kb.parsers.html import parse_html
from warbler.kb.parsers.markdown import parse_markdown
from warbler.kb.parsers.pdf import parse_pdf
from warbler.kb.parsers.sheet import parse_sheet, read_qa_rows
from warbler.kb.parsers.text import parse_text

__all__ = [
    "FORMATS",
    "ParseError",
    "ParsedDocument",
    "Section",
    "format_for",
    "parse",
    "read_qa_rows",
]

FORMATS = ("txt", "md", "html", "pdf", "docx", "csv", "xlsx")
_EXTENSIONS = {
    ".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html",
    ".htm": "html", ".pdf": "pdf", ".docx": "docx", ".csv": "csv", ".xlsx": "xlsx",
}  # fmt: skip


def format_for(name: str, head: bytes = b"") -> str | None:
    """The format of a file by its name's extension (or a PDF by its signature), or None."""
    fmt = _EXTENSIONS.get(PurePosixPath(name.lower()).suffix)
    if fmt is None and head.startswith(b"%PDF-"):
        return "pdf"
    return fmt


def title_of(name: str) -> str:
    """A fallback title: the file name without folders and extension."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    return stem or name


def parse(data: bytes, fmt: str, fallback_title: str) -> ParsedDocument:
    """Parse ``data`` as ``fmt`` (one of ``FORMATS``)."""
    if not data:
        raise ParseError("the document is empty")
    if fmt == "txt":
        return parse_text(data, fallback_title)
    if fmt == "md":
        return parse_markdown(data, fallback_title)
    if fmt == "html":
        return parse_html(data, fallback_title)
    if fmt == "pdf":
        return parse_pdf(data, fallback_title)
    if fmt == "docx":
        return parse_docx(data, fallback_title)
    if fmt in ("csv", "xlsx"):
        return parse_sheet(data, fmt, fallback_title)
    raise ParseError(f"unsupported format {fmt!r}; supported: {', '.join(FORMATS)}")
