"""Word (.docx, python-docx): Heading/标题 styles build the title path; tables go row by row."""

from __future__ import annotations

import io
import re

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, ParseError, clean_inline

# Word stores built-in style names in English; localised copies of Word may show "标题 1".
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)


def parse_docx(data: bytes, fallback_title: str) -> ParsedDocument:
    try:
        document = Document(io.BytesIO(data))
        builder = DocumentBuilder(fallback_title, title=document.core_properties.title or "")
        for block in document.iter_inner_content():
            if isinstance(block, Paragraph):
                _paragraph(builder, block)
            elif isinstance(block, Table):
                for row in block.rows:
                    cells: list[str] = []
                    for cell in row.cells:
                        text = clean_inline(cell.text)
                        # Merged cells repeat across the row: keep each once.
                        if text and (not cells or cells[-1] != text):
                            cells.append(text)
                    builder.paragraph(" | ".join(cells))
    except ParseError:
        raise
    except Exception as exc:  # a damaged zip or XML can fail in many ways: all mean unreadable
        detail = str(exc) or type(exc).__name__
        raise ParseError(f"could not read DOCX: {detail}") from None
    return builder.build()


def _paragraph(builder: DocumentBuilder, paragraph: Paragraph) -> None:
    text = paragraph.text
    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    heading = _HEADING_STYLE.match(name.strip())
    if name.strip().lower() == "title":
        builder.title = builder.title or clean_inline(text)
    elif heading:
        builder.heading(int(heading.group(1)), text)
    else:
        builder.paragraph(text)
