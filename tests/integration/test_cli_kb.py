"""`warbler kb ingest`: a mixed folder is ingested with progress bars and a summary; a
corrupt PDF fails alone (exit 1); a second run skips unchanged files; a changed file
replaces its chunks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from tests.conftest import make_settings, seed_tenant
from tests.unit.test_parsers import make_docx, make_pdf
from warbler.cli import app as cli
from warbler.store.db import Database
from warbler.store.models_kb import KbChunk, KbDocument

runner = CliRunner()


def handbook(root: Path) -> Path:
    folder = root / "handbook"
    (folder / "policies").mkdir(parents=True)
    (folder / "returns.md").write_text("# Returns\n\n## Window\n\nReturn within 30 days.\n")
    (folder / "shipping.html").write_bytes(
        "<html><head><title>Shipping</title></head><body><h2>运费</h2>"
        "<p>满五十元包邮。</p></body></html>".encode()
    )
    (folder / "warranty.pdf").write_bytes(make_pdf([["Warranty covers two years."]]))
    (folder / "policies" / "leave.docx").write_bytes(
        make_docx([("h1", "Leave"), ("p", "Annual leave is fifteen days.")])
    )
    (folder / "faq.csv").write_text("question,answer\nOpening hours?,9 to 5.\nPhone?,555-0100\n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # not a document: ignored
    (folder / ".hidden.md").write_text("# hidden\n\nnot ingested")
    return folder


def chunks_by_source(data: Path) -> dict[str, list[tuple[str, str]]]:
    async def read() -> dict[str, list[tuple[str, str]]]:
        db = Database(make_settings(data).effective_database_url)
        try:
            async with db.read() as s:
                rows = await s.execute(
                    select(KbDocument.source, KbChunk.id, KbChunk.text)
                    .join(KbChunk, KbChunk.document_id == KbDocument.id)
                    .order_by(KbDocument.source, KbChunk.position)
                )
                out: dict[str, list[tuple[str, str]]] = {}
                for source, chunk_id, text in rows.all():
                    out.setdefault(source, []).append((chunk_id, text))
                return out
        finally:
            await db.dispose()

    return asyncio.run(read())


def ingest(data: Path, *args: str) -> Any:
    return runner.invoke(
        cli, ["kb", "ingest", *args, "--tenant", "acme", "--kb", "Handbook"],
        env={"WARBLER_DATA_DIR": str(data), "COLUMNS": "200"},
    )  # fmt: skip


def test_a_mixed_folder_is_ingested_then_skipped_then_a_changed_file_replaced(tmp_path):
    data = tmp_path / "data"
    seed_tenant(data, "acme", [])
    folder = handbook(tmp_path)
    corrupt = tmp_path / "broken.pdf"
    corrupt.write_bytes(make_pdf([["x"]])[:120])

    missing = ingest(data, str(folder))
    assert missing.exit_code == 1 and "add --create" in missing.output

    first = ingest(data, str(folder), str(corrupt), "--create")
    assert first.exit_code == 1, first.output  # one file failed
    out = first.output
    assert "created knowledge base 'Handbook'" in out
    assert "all files" in out and "100%" in out and "6/6" in out  # the progress bar
    assert "5 ingested, 0 skipped, 1 failed; ignored (not a document type): 1" in out
    assert "could not read PDF" in out
    chunks = chunks_by_source(data)
    assert sorted(chunks) == [
        "handbook/faq.csv", "handbook/policies/leave.docx", "handbook/returns.md",
        "handbook/shipping.html", "handbook/warranty.pdf",
    ]  # fmt: skip
    assert [t for _, t in chunks["handbook/faq.csv"]] == [
        "Q: Opening hours?\nA: 9 to 5.",
        "Q: Phone?\nA: 555-0100",
    ]
    assert [t for _, t in chunks["handbook/shipping.html"]] == ["满五十元包邮。"]

    second = ingest(data, str(folder))
    assert second.exit_code == 0, second.output
    assert "0 ingested, 5 skipped, 0 failed" in second.output
    assert chunks_by_source(data) == chunks

    (folder / "returns.md").write_text(
        "# Returns\n\n## Window\n\nReturn within 60 days.\n\n## Refunds\n\nRefunds take 5 days.\n"
    )
    third = ingest(data, str(folder))
    assert third.exit_code == 0 and "1 ingested, 4 skipped, 0 failed" in third.output
    after = chunks_by_source(data)
    old_ids = {i for i, _ in chunks["handbook/returns.md"]}
    assert [t for _, t in after["handbook/returns.md"]] == [
        "Return within 60 days.",
        "Refunds take 5 days.",
    ]
    assert not old_ids & {i for i, _ in after["handbook/returns.md"]}
    assert {s: v for s, v in after.items() if s != "handbook/returns.md"} == {
        s: v for s, v in chunks.items() if s != "handbook/returns.md"
    }


def test_a_missing_path_or_tenant_is_an_error(tmp_path):
    data = tmp_path / "data"
    seed_tenant(data, "acme", [])
    nowhere = ingest(data, str(tmp_path / "nope"))
    assert nowhere.exit_code == 2 and "no such file or folder" in nowhere.output
    (tmp_path / "a.md").write_text("# A\n\nText.")
    result = runner.invoke(
        cli, ["kb", "ingest", str(tmp_path / "a.md"), "--tenant", "nope", "--kb", "K", "--create"],
        env={"WARBLER_DATA_DIR": str(data)},
    )  # fmt: skip
    assert result.exit_code == 1 and "no tenant 'nope'" in result.output
