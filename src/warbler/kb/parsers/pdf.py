"""PDF (pypdf): text page by page; the outline (bookmarks), if any, builds the title path."""

from __future__ import annotations

import io
import logging
from typing import Any

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, ParseError
from warbler.kb.parsers.text import paragraphs_of

# pypdf logs every recoverable defect of a malformed file; the error we raise is enough.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _outline_starts(reader: Any) -> list[tuple[int, tuple[str, ...]]]:
    """(first page, heading path) of every outline entry, in page order."""
    starts: list[tuple[int, tuple[str, ...]]] = []

    def walk(items: list[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = str(getattr(item, "title", "") or "").strip()
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a dangling bookmark is no reason to refuse the file
                page = None
            last = (*parents, title) if title else parents
            if page is not None and page >= 0 and title:
                starts.append((page, last))

    try:
        walk(list(reader.outline), ())
    except Exception:
        return []
    return sorted(starts, key=lambda s: s[0])


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    # pypdf raises many exception types on damaged input (its own, ValueError, KeyError,
    # struct errors...): every one of them means "this file cannot be read".
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("could not read PDF: it is password-protected")
        pages = [page.extract_text() or "" for page in reader.pages]
        starts = _outline_starts(reader)
        meta = reader.metadata
        meta_title = str(meta.title or "") if meta is not None else ""
    except ParseError:
        raise
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        raise ParseError(f"could not read PDF: {detail}") from None
    builder = DocumentBuilder(fallback_title, title=meta_title)
    path: tuple[str, ...] = ()
    for number, text in enumerate(pages):
        new_path = path
        for first_page, entry in starts:
            if first_page <= number:
                new_path = entry
        if new_path != path:
            # Announce only the headings that changed (shared parents stay open).
            same = 0
            while same < min(len(path), len(new_path)) and path[same] == new_path[same]:
                same += 1
            for depth in range(same, len(new_path)):
                builder.heading(depth + 1, new_path[depth])
            path = new_path
        for paragraph in paragraphs_of(text):
            builder.paragraph(paragraph)
    if not any(text.strip() for text in pages):
        raise ParseError("could not read PDF: it has no text layer (a scanned PDF needs OCR first)")
    return builder.build()
