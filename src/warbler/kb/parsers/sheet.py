"""Spreadsheets (CSV, XLSX): a question/answer sheet gives one chunk per row; any other sheet
gives one "header: value" line per row. ``read_qa_rows`` feeds curated-answer imports too."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from warbler.kb.parsers.document import DocumentBuilder, ParsedDocument, ParseError, clean_inline
from warbler.kb.parsers.text import decode_text

Rows = list[list[str]]

# Header names (compared lower-cased, without a trailing colon) that mark a Q&A sheet.
QUESTION_HEADERS = frozenset(
    {"question", "questions", "q", "faq", "问题", "问", "标准问题", "提问", "问句",
     "similar question", "similar questions", "alternative questions", "相似问题", "相似问法",
     "其他问法", "同义问法"}
)  # fmt: skip
ANSWER_HEADERS = frozenset({"answer", "a", "reply", "答案", "回答", "答", "回复", "标准答案"})
_CJK_RANGE = ("\u4e00", "\u9fff")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _csv_rows(data: bytes) -> list[tuple[str, Rows]]:
    text = decode_text(data, "CSV")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [[_cell(c) for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise ParseError(f"could not read CSV: {exc}") from None
    return [("", rows)]


def _xlsx_rows(data: bytes) -> list[tuple[str, Rows]]:
    try:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return [
                (
                    str(sheet.title),
                    [[_cell(c) for c in row] for row in sheet.iter_rows(values_only=True)],
                )
                for sheet in book.worksheets
            ]
        finally:
            book.close()
    except Exception as exc:  # a damaged zip or XML fails in many ways: all mean unreadable
        detail = str(exc) or type(exc).__name__
        raise ParseError(f"could not read XLSX: {detail}") from None


def _sheets(data: bytes, fmt: str) -> list[tuple[str, Rows]]:
    fmt = fmt.lower().lstrip(".")
    if fmt == "csv":
        sheets = _csv_rows(data)
    elif fmt == "xlsx":
        sheets = _xlsx_rows(data)
    else:
        raise ParseError(f"not a spreadsheet format: {fmt!r} (csv or xlsx)")
    # Drop empty rows; the first remaining row is the header.
    return [(name, [r for r in rows if any(r)]) for name, rows in sheets]


def _header_key(text: str) -> str:
    return clean_inline(text).lower().rstrip(":：").strip()


def qa_columns(header: list[str]) -> tuple[list[int], int] | None:
    """(question column indexes, answer column index) if the header names both."""
    keys = [_header_key(h) for h in header]
    questions = [i for i, k in enumerate(keys) if k in QUESTION_HEADERS]
    answers = [i for i, k in enumerate(keys) if k in ANSWER_HEADERS]
    if not questions or not answers:
        return None
    return questions, answers[0]


def _qa_of(rows: Rows, columns: tuple[list[int], int]) -> list[tuple[list[str], str]]:
    question_cols, answer_col = columns
    out: list[tuple[list[str], str]] = []
    for row in rows[1:]:
        answer = row[answer_col].strip() if answer_col < len(row) else ""
        questions: list[str] = []
        for col in question_cols:
            # A cell may hold several phrasings, one per line.
            for line in (row[col] if col < len(row) else "").split("\n"):
                line = clean_inline(line)
                if line and line not in questions:
                    questions.append(line)
        if questions and answer:
            out.append((questions, answer))
    return out


def read_qa_rows(path_or_bytes: str | Path | bytes, format: str) -> list[tuple[list[str], str]]:
    """Every (questions, answer) row of the Q&A sheets in a CSV or XLSX file.

    A sheet is a Q&A sheet when its header row names a question column (question, 问题,
    相似问题, ...) and an answer column (answer, 答案, ...); several question columns, and
    several phrasings per cell (one per line), all become questions of the same answer.
    Rows missing a question or an answer are left out. Raises ``ParseError``.
    """
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    found = False
    out: list[tuple[list[str], str]] = []
    for _, rows in _sheets(data, format):
        columns = qa_columns(rows[0]) if rows else None
        if columns is not None:
            found = True
            out.extend(_qa_of(rows, columns))
    if not found:
        raise ParseError(
            "the sheet has no question and answer columns "
            "(a header row with e.g. question/answer or 问题/答案)"
        )
    return out


def _is_chinese(text: str) -> bool:
    return any(_CJK_RANGE[0] <= ch <= _CJK_RANGE[1] for ch in text)


def qa_text(questions: list[str], answer: str) -> str:
    """How one Q&A row reads as a passage."""
    q, a = ("问：", "答：") if _is_chinese(answer + questions[0]) else ("Q: ", "A: ")
    return f"{q}{' / '.join(questions)}\n{a}{answer}"


def parse_sheet(data: bytes, fmt: str, fallback_title: str) -> ParsedDocument:
    builder = DocumentBuilder(fallback_title)
    sheets = [(name, rows) for name, rows in _sheets(data, fmt) if rows]
    for name, rows in sheets:
        if len(sheets) > 1 and name:
            builder.heading(1, name)
        columns = qa_columns(rows[0])
        if columns is not None:
            for questions, answer in _qa_of(rows, columns):
                builder.section_break()  # one row, one chunk
                builder.paragraph(qa_text(questions, answer), keep_lines=True)
            builder.section_break()
            continue
        header = rows[0]
        for row in rows[1:] or rows:
            pairs = [
                f"{header[i]}: {value}" if i < len(header) and header[i] and rows[1:] else value
                for i, value in enumerate(row)
                if value
            ]
            builder.paragraph("; ".join(pairs))
    return builder.build()
