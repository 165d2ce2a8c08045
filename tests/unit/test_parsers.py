"""Parsers turn each supported format into a title and sections with heading paths, and
fail only with a ParseError that says what is wrong. Also: builders of real test documents."""

from __future__ import annotations

import io
import random

import pytest

from warbler.kb.parsers import FORMATS, ParseError, format_for, parse, read_qa_rows

# -- real documents for tests (also used by the integration tests) ----------------------------


def make_pdf(pages: list[list[str]], outline: list[tuple[str, int]] | None = None) -> bytes:
    """A real PDF: one text line per entry (Helvetica), optional bookmarks (title, page)."""
    objects: list[bytes] = [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", b""]
    font_id, pages_id = 1, 2
    page_ids = []
    for lines in pages:
        ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*".encode("latin-1"))
        stream = b"\n".join([*ops, b"ET"])
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
            % (pages_id, font_id, content_id)
        )
        page_ids.append(len(objects))
    kids = b" ".join(b"%d 0 R" % p for p in page_ids)
    objects[pages_id - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    objects.append(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    data = bytes(out)
    if outline:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        for title, page in outline:
            writer.add_outline_item(title=title, page_number=page)
        buffer = io.BytesIO()
        writer.write(buffer)
        data = buffer.getvalue()
    return data


def make_docx(blocks: list[tuple[str, str]], *, title: str = "") -> bytes:
    """A real .docx: ("h1".."h3", text) headings, ("p", text) paragraphs, ("table", "a|b;c|d")."""
    from docx import Document

    document = Document()
    if title:
        document.core_properties.title = title
    for kind, text in blocks:
        if kind.startswith("h"):
            document.add_heading(text, level=int(kind[1:]))
        elif kind == "table":
            rows = [r.split("|") for r in text.split(";")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    table.cell(r, c).text = value
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def paths_and_text(data: bytes, fmt: str) -> list[tuple[str, str]]:
    doc = parse(data, fmt, "fallback")
    return [(" > ".join(s.path), p) for s in doc.sections for p in s.paragraphs]


# -- Markdown --------------------------------------------------------------------------------


def test_markdown_headings_build_title_paths_and_the_only_h1_is_the_title():
    md = """---
layout: page
---
# 退货指南

开头的说明。

## Returns
You can return items
within 30 days.

### Refunds
- Refunds take [five days](https://example.com/refunds) **after** we get `the box`.
- Ask an agent.

```
# not a heading
print("hi")
```

Shipping
--------
我们免费配送。
"""
    doc = parse(md.encode(), "md", "fallback")
    assert doc.title == "退货指南"
    assert paths_and_text(md.encode(), "md") == [
        ("", "开头的说明。"),
        ("Returns", "You can return items within 30 days."),
        ("Returns > Refunds", "Refunds take five days after we get the box."),
        ("Returns > Refunds", "Ask an agent."),
        ("Returns > Refunds", '# not a heading\nprint("hi")'),
        ("Shipping", "我们免费配送。"),
    ]


def test_markdown_with_several_h1_keeps_them_in_paths_and_titles_from_the_file_name():
    md = b"# One\n\ntext one\n\n# Two\n\ntext two\n"
    doc = parse(md, "md", "handbook")
    assert doc.title == "handbook"
    assert paths_and_text(md, "md") == [("One", "text one"), ("Two", "text two")]


def test_text_files_in_gb18030_and_wrapped_chinese_lines_are_rejoined():
    text = "第一段第一行\n第一段第二行。\n\nSecond paragraph\nwraps here.".encode("gb18030")
    assert paths_and_text(text, "txt") == [
        ("", "第一段第一行第一段第二行。"),
        ("", "Second paragraph wraps here."),
    ]


def test_binary_bytes_named_txt_fail_with_a_clear_error():
    with pytest.raises(ParseError, match="binary"):
        parse(b"\x00\x01\x02garbage", "txt", "x")


# -- HTML ------------------------------------------------------------------------------------


def test_html_headings_paragraphs_and_tables_without_scripts_or_navigation():
    html = """<html><head><title>Help 帮助</title><style>p{}</style></head><body>
    <nav><a href="/">Home</a></nav>
    <h1>Help</h1><p>Welcome
       to help.</p>
    <h2>退货</h2><div>七天内
    可以退货。<b>无理由</b></div>
    <h3>Refund table</h3>
    <table><tr><th>Days</th><th>Refund</th></tr><tr><td>7</td><td>100%</td></tr></table>
    <script>alert("x")</script><footer>© ACME</footer></body></html>"""
    doc = parse(html.encode(), "html", "page")
    assert doc.title == "Help 帮助"
    assert paths_and_text(html.encode(), "html") == [
        ("", "Welcome to help."),
        ("退货", "七天内可以退货。无理由"),
        ("退货 > Refund table", "Days | Refund"),
        ("退货 > Refund table", "7 | 100%"),
    ]


def test_html_declared_as_gbk_is_decoded():
    html = '<html><head><meta charset="gbk"></head><body><p>你好，世界</p></body></html>'
    assert paths_and_text(html.encode("gbk"), "html") == [("", "你好，世界")]


# -- PDF -------------------------------------------------------------------------------------


def test_pdf_text_is_read_page_by_page_with_bookmarks_as_title_paths():
    pdf = make_pdf(
        [["Returns policy.", "You can return items within 30 days."], ["Shipping is free."]],
        outline=[("Returns", 0), ("Shipping", 1)],
    )
    assert paths_and_text(pdf, "pdf") == [
        ("Returns", "Returns policy. You can return items within 30 days."),
        ("Shipping", "Shipping is free."),
    ]


@pytest.mark.parametrize("damage", ["truncated", "garbled", "not_pdf"])
def test_a_corrupt_pdf_fails_with_could_not_read_pdf(damage):
    good = make_pdf([["Hello there."]])
    bad = {
        "truncated": good[: len(good) // 3],
        "garbled": good[:9] + bytes(range(256)) * 4,
        "not_pdf": b"this is not a PDF at all",
    }[damage]
    with pytest.raises(ParseError) as caught:
        parse(bad, "pdf", "broken")
    assert caught.value.message.startswith("could not read PDF: ")


def test_a_pdf_without_text_says_it_needs_ocr():
    with pytest.raises(ParseError, match="no text layer"):
        parse(make_pdf([[]]), "pdf", "scan")


# -- DOCX ------------------------------------------------------------------------------------


def test_docx_heading_styles_build_paths_and_tables_go_row_by_row():
    data = make_docx(
        [
            ("h1", "员工手册"),
            ("p", "欢迎加入。"),
            ("h2", "Leave"),
            ("p", "Annual leave is 15 days."),
            ("h3", "Sick leave"),
            ("table", "Days|Pay;1-3|100%"),
        ],
        title="Handbook",
    )
    doc = parse(data, "docx", "file")
    assert doc.title == "Handbook"
    assert paths_and_text(data, "docx") == [
        ("", "欢迎加入。"),
        ("Leave", "Annual leave is 15 days."),
        ("Leave > Sick leave", "Days | Pay"),
        ("Leave > Sick leave", "1-3 | 100%"),
    ]


def test_a_corrupt_docx_fails_with_could_not_read_docx():
    with pytest.raises(ParseError, match=r"^could not read DOCX: "):
        parse(make_docx([("p", "x")])[:200], "docx", "broken")


# -- sheets ----------------------------------------------------------------------------------


def test_a_qa_csv_gives_one_section_per_row_and_qa_rows_for_curated_answers():
    data = '问题,相似问题,答案\n怎么退货？,"如何退货\n退货流程",在订单页点击退货。\n,,\n没有答案的问题,,\n'.encode()
    doc = parse(data, "csv", "faq")
    assert [s.paragraphs for s in doc.sections] == [
        ("问：怎么退货？ / 如何退货 / 退货流程\n答：在订单页点击退货。",)
    ]
    assert read_qa_rows(data, "csv") == [
        (["怎么退货？", "如何退货", "退货流程"], "在订单页点击退货。")
    ]


def test_an_xlsx_qa_sheet_is_read_from_a_path(tmp_path):
    path = tmp_path / "faq.xlsx"
    path.write_bytes(
        make_xlsx(
            {
                "FAQ": [
                    ["Question", "Answer:"],
                    ["How do I reset my password?", "Use 'Forgot password' on the login page."],
                    ["Opening hours?", "9 to 5."],
                ]
            }
        )
    )
    assert read_qa_rows(path, "xlsx") == [
        (["How do I reset my password?"], "Use 'Forgot password' on the login page."),
        (["Opening hours?"], "9 to 5."),
    ]
    doc = parse(path.read_bytes(), "xlsx", "faq")
    assert [p for s in doc.sections for p in s.paragraphs][1] == "Q: Opening hours?\nA: 9 to 5."
    assert len(doc.sections) == 2


def test_a_sheet_without_qa_columns_becomes_header_value_lines_but_is_no_qa_source():
    data = make_xlsx({"Prices": [["Plan", "Price"], ["Basic", 10], ["Pro", 25.0]]})
    assert paths_and_text(data, "xlsx") == [
        ("", "Plan: Basic; Price: 10"),
        ("", "Plan: Pro; Price: 25"),
    ]
    with pytest.raises(ParseError, match="no question and answer columns"):
        read_qa_rows(data, "xlsx")


def test_formats_are_chosen_by_extension_or_pdf_signature():
    assert format_for("a/b/退货.MD") == "md"
    assert format_for("page.htm") == "html"
    assert format_for("scan", b"%PDF-1.7") == "pdf"
    assert format_for("image.png", b"\x89PNG") is None


def test_empty_documents_fail_clearly():
    with pytest.raises(ParseError, match="empty"):
        parse(b"", "md", "x")
    with pytest.raises(ParseError, match="no text"):
        parse(b"<html><body><script>x</script></body></html>", "html", "x")


@pytest.mark.parametrize("fmt", FORMATS)
def test_garbage_in_any_format_raises_only_parse_error(fmt):
    rng = random.Random(fmt)
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))) for _ in range(15)]
    samples += [b"PK\x03\x04" + s for s in samples[:5]] + [b"%PDF-1.4\n" + s for s in samples[:5]]
    for sample in samples:
        try:
            parse(sample, fmt, "garbage")
        except ParseError as exc:
            assert exc.message
