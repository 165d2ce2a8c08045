"""``warbler kb``: knowledge-base commands (ingest documents from disk, with progress bars).

The commands work on the database directly, as ``warbler admin`` does, acting as the tenant's
operator, and run the same ingestion code as the ``kb.ingest`` job, in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table

from warbler.config import load_settings
from warbler.errors import NotFound, WarblerError
from warbler.im.principal import Principal
from warbler.kb.ingest.pipeline import IngestFailed
from warbler.kb.parsers import format_for
from warbler.services import Services, build_services
from warbler.store.migrate import upgrade

kb = typer.Typer(
    help="Knowledge bases: ingest documents, import curated answers, evaluate retrieval.",
    no_args_is_help=True,
)
console = Console()

T = TypeVar("T")
ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML settings file.")]
TenantOpt = Annotated[str, typer.Option("--tenant", help="The tenant's slug.")]
KbOpt = Annotated[str, typer.Option("--kb", help="The knowledge base's name.")]


def operator(tenant_id: str) -> Principal:
    """Who the CLI acts as: the operator of the server, with every right in the tenant."""
    return Principal(tenant_id=tenant_id, api_key_id="cli", scopes=frozenset({"admin"}))


def run_with_services(config: str | None, work: Callable[[Services], Awaitable[T]]) -> T:
    """Build the services from settings, bring the schema up to date, run ``work``; a domain
    error is printed and exits with status 1."""

    async def main() -> T:
        services = build_services(load_settings(config))
        try:
            await upgrade(services.db)
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except WarblerError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(1) from exc


async def tenant_id_of(svc: Services, slug: str) -> str:
    tenant = await svc.users.tenant_by_slug(slug)
    if tenant is None:
        raise NotFound(f"no tenant '{slug}'")
    return tenant.id


def collect(paths: list[Path]) -> tuple[list[tuple[Path, str]], int]:
    """(file, source name) to ingest, and how many files in folders were ignored (types
    that cannot be ingested, hidden files). A folder's files are named by their path under
    it, prefixed with the folder's name ("handbook/returns/退货.md"); a file by its name."""
    found: list[tuple[Path, str]] = []
    ignored = 0
    for path in paths:
        if path.is_dir():
            root = path.resolve()
            for file in sorted(root.rglob("*")):
                relative = file.relative_to(root)
                if not file.is_file() or any(part.startswith(".") for part in relative.parts):
                    continue
                if format_for(file.name) is None:
                    ignored += 1
                    continue
                found.append((file, f"{root.name}/{relative.as_posix()}"))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise typer.BadParameter(f"no such file or folder: {path}", param_hint="PATH")
    return found, ignored


@dataclass
class Row:
    source: str
    result: str  # ingested | skipped | failed
    chunks: int = 0
    error: str = ""


async def _ingest_all(
    svc: Services,
    tenant: str,
    kb_name: str,
    create: bool,
    roles: list[str],
    files: list[tuple[Path, str]],
) -> list[Row]:
    tenant_id = await tenant_id_of(svc, tenant)
    principal = operator(tenant_id)
    base = await svc.kb.by_name(tenant_id, kb_name)
    if base is None:
        if not create:
            raise NotFound(f"no knowledge base '{kb_name}' in tenant '{tenant}' (add --create)")
        kb_id = (await svc.kb.create(principal, name=kb_name, read_roles=roles or None))["id"]
        console.print(f"created knowledge base '{kb_name}' ({kb_id})")
    else:
        kb_id = base.id
    rows: list[Row] = []
    columns = (
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), MofNCompleteColumn(),
    )  # fmt: skip
    with Progress(*columns, console=console) as progress:
        overall = progress.add_task("all files", total=len(files))
        for path, source in files:
            task = progress.add_task(f"  {source}", total=1.0)

            def show(value: float, task_id: TaskID = task) -> None:
                progress.update(task_id, completed=value)

            rows.append(await _ingest_one(svc, principal, kb_id, path, source, show))
            progress.remove_task(task)
            progress.advance(overall)
    return rows


async def _ingest_one(
    svc: Services,
    principal: Principal,
    kb_id: str,
    path: Path,
    source: str,
    show: Callable[[float], None],
) -> Row:
    try:
        data = await asyncio.to_thread(path.read_bytes)
        submitted = await svc.kb_ingest.submit_file(principal, kb_id, source, data, enqueue=False)
        if submitted.outcome == "skipped":
            return Row(source, "skipped", submitted.document["chunk_count"])
        outcome = await svc.kb_ingest.ingest_now(principal, submitted, on_progress=show)
        return Row(source, "ingested", outcome.chunks)
    except IngestFailed as exc:
        return Row(source, "failed", error=exc.message)
    except WarblerError as exc:
        return Row(source, "failed", error=exc.message)
    except OSError as exc:
        return Row(source, "failed", error=f"could not read the file: {exc.strerror or exc}")


@kb.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (searched recursively).")],
    tenant: TenantOpt,
    kb_name: KbOpt,
    create: Annotated[
        bool, typer.Option("--create", help="Create the KB if it is missing.")
    ] = False,
    read_role: Annotated[
        list[str] | None,
        typer.Option("--read-role", help="With --create: a role that may read it (repeat)."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Ingest documents (txt, md, html, pdf, docx, csv, xlsx) into a knowledge base.

    Unchanged files are skipped; changed ones replace their chunks. Exits with status 1 if
    any file failed.
    """
    files, ignored = collect(paths)
    rows = run_with_services(
        config, lambda svc: _ingest_all(svc, tenant, kb_name, create, read_role or [], files)
    )
    table = Table(title=f"knowledge base '{kb_name}'")
    for column in ("document", "result", "chunks", "error"):
        table.add_column(column, overflow="fold")
    colours = {"ingested": "green", "skipped": "cyan", "failed": "red"}
    for row in rows:
        result = f"[{colours[row.result]}]{row.result}[/]"
        table.add_row(row.source, result, str(row.chunks), row.error)
    console.print(table)
    counts = {name: sum(r.result == name for r in rows) for name in colours}
    summary = ", ".join(f"{n} {name}" for name, n in counts.items())
    console.print(summary + (f"; ignored (not a document type): {ignored}" if ignored else ""))
    if counts["failed"]:
        raise typer.Exit(1)


# -- evaluation commands (``warbler kb eval ...``) go below this line --------------------------


async def _kb_ids(svc: Services, tenant_id: str, tenant: str, names: list[str]) -> list[str]:
    ids = []
    for name in names:
        base = await svc.kb.by_name(tenant_id, name)
        if base is None:
            raise NotFound(f"no knowledge base '{name}' in tenant '{tenant}'")
        ids.append(base.id)
    return ids


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


@kb.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSONL: one question per line (docs/knowledge.md).")],
    tenant: TenantOpt,
    kb_names: Annotated[
        list[str] | None,
        typer.Option("--kb", help="Search only this KB (repeat); default: all of the tenant's."),
    ] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, max=50, help="Default: KB_TOP_K.")
    ] = None,
    show: Annotated[
        str, typer.Option("--show", help="Questions to list: misses, all or none.")
    ] = "misses",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Measure retrieval on questions with known answers: recall@k and MRR of the expected
    sources, curated-answer accuracy, abstention on unanswerable questions, latency p50/p95."""
    import json

    from warbler.kb.eval import Evaluator, parse_cases

    if show not in ("misses", "all", "none"):
        raise typer.BadParameter("misses, all or none", param_hint="--show")

    try:
        cases = parse_cases(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror or exc}") from None
    except WarblerError as exc:
        raise typer.BadParameter(exc.message, param_hint="FILE") from None

    async def work(svc: Services) -> Any:
        tenant_id = await tenant_id_of(svc, tenant)
        kb_ids = await _kb_ids(svc, tenant_id, tenant, kb_names) if kb_names else None
        evaluator = Evaluator(svc.db, svc.retriever)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("asking", total=len(cases))
            return await evaluator.run(
                operator(tenant_id), cases, kb_ids=kb_ids, top_k=top_k,
                on_case=lambda _: progress.advance(task),
            )  # fmt: skip

    report = run_with_services(config, work)
    if as_json:
        console.print_json(json.dumps(report.summary()))
        return
    table = Table(title=f"retrieval evaluation: {file.name} ({len(report.results)} questions)")
    for column in ("questions", "n", "metric", "value"):
        table.add_column(column)
    k = report.top_k
    passages, curated, unanswerable = (
        len(report.of(x)) for x in ("passages", "curated", "unanswerable")
    )
    table.add_row("with expected sources", str(passages), f"recall@{k}", _pct(report.recall_at_k))
    table.add_row("", "", "MRR", "–" if report.mrr is None else f"{report.mrr:.3f}")
    table.add_row("", "", "grounded", _pct(report.grounded_rate("passages")))
    table.add_row(
        "with expected curated answer",
        str(curated),
        "right answer",
        _pct(report.accuracy("curated")),
    )
    table.add_row(
        "unanswerable", str(unanswerable), "not grounded", _pct(report.accuracy("unanswerable"))
    )
    table.add_row("all", str(len(report.results)), "latency p50", f"{report.latency(50):.1f} ms")
    table.add_row("", "", "latency p95", f"{report.latency(95):.1f} ms")
    console.print(table)
    listed = [r for r in report.results if show == "all" or (show == "misses" and not r.ok)]
    if listed:
        detail = Table(title="misses" if show == "misses" else "questions")
        for column in ("question", "expected", "got", "grounded"):
            detail.add_column(column, overflow="fold")
        for r in listed:
            expected = (
                r.case.expected_curated or ", ".join(r.case.expected_sources or ()) or "(nothing)"
            )
            got = (
                f"curated: {r.curated}" if r.curated else ", ".join(dict.fromkeys(r.sources)) or "–"
            )
            mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
            detail.add_row(
                f"{mark} {r.case.question}", expected, got, "yes" if r.grounded else "no"
            )
        console.print(detail)


@kb.command("curated-import")
def curated_import(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX with question/answer columns.")],
    tenant: TenantOpt,
    kb_name: KbOpt,
    config: ConfigOpt = None,
) -> None:
    """Import curated answers (FAQ pairs) from a sheet; importing it again changes nothing."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc.strerror or exc}") from None

    async def work(svc: Services) -> dict[str, int]:
        tenant_id = await tenant_id_of(svc, tenant)
        (kb_id,) = await _kb_ids(svc, tenant_id, tenant, [kb_name])
        return await svc.curated.import_file(operator(tenant_id), kb_id, data, file.suffix)

    counts = run_with_services(config, work)
    console.print(", ".join(f"{n} {name}" for name, n in counts.items()))
