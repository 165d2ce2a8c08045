"""``warbler kb eval``: recall@k, MRR, curated accuracy, abstention and latency of retrieval
on questions with known answers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.integration.kb_seed import demo_kb
from warbler.cli import app
from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.kb.eval import Evaluator, parse_cases
from warbler.services import Services, build_services
from warbler.store.migrate import upgrade

CASES = [
    # Found first.
    {"question": "Can I use two gift cards on one order?", "expected_sources": ["gift-cards.md"]},
    # Found, but second: the warranty page answers first.
    {
        "question": "How much is a repair diagnosis after the warranty?",
        "expected_sources": ["docs/missing.md", "zh-trade-in.md"],
    },
    {"question": "Where can I see my gift card balance?", "expected_sources": ["nowhere.md"]},
    {"question": "Who sells the cheapest flights to Paris?", "expected_sources": []},
]


async def seed(services: Services) -> tuple[Principal, str]:
    tenant = await services.users.create_tenant(slug="acme", name="Acme")
    kb_id, _ = await demo_kb(
        services, tenant["id"], "gift-cards.md", "warranty.md", "zh-trade-in.md"
    )
    principal = Principal(tenant_id=tenant["id"], api_key_id="k", scopes=frozenset({"admin"}))
    await services.curated.create(
        principal, kb_id, questions=["Do you gift wrap?", "能包装成礼物吗"], answer="Yes, for ¥10."
    )
    return principal, kb_id


def test_eval_files_are_checked_line_by_line():
    good = parse_cases(
        '# comment\n{"question": "q1", "expected_sources": ["a.md"]}\n\n'
        '{"question": "q2", "expected_curated": "yes"}\n{"question": "q3", "expected_sources": []}'
    )
    assert [c.kind for c in good] == ["passages", "curated", "unanswerable"]
    for text, problem in (
        ("{nope", "line 1: not JSON"),
        ('{"expected_sources": []}', 'needs a "question"'),
        ('{"question": "q"}', "exactly one of"),
        ('{"question": "q", "expected_sources": "a.md"}', "list of source names"),
        ("", "no questions"),
    ):
        with pytest.raises(InvalidRequest, match=problem):
            parse_cases(text)


async def test_eval_measures_recall_mrr_curated_answers_and_abstention(tmp_path):
    services = build_services(make_settings(tmp_path / "data"))
    try:
        await upgrade(services.db)
        principal, _ = await seed(services)
        cases = parse_cases(
            "\n".join(json.dumps(c) for c in CASES)
            + "\n"
            + json.dumps(
                {"question": "Do you offer gift wrapping?", "expected_curated": "Yes, for ¥10."}
            )
        )
        report = await Evaluator(services.db, services.retriever).run(principal, cases, top_k=3)
    finally:
        await services.close()
    ranks = [r.rank for r in report.results]
    assert ranks[0] == 1 and ranks[2] is None
    assert report.results[0].sources[0] == "gift-cards.md"
    assert report.recall_at_k == pytest.approx(sum(r is not None for r in ranks[:3]) / 3)
    assert report.mrr == pytest.approx(sum(1 / r for r in ranks[:3] if r) / 3)
    assert report.accuracy("unanswerable") == 1.0 and not report.results[3].grounded
    assert report.accuracy("curated") == 1.0 and report.results[4].curated == "Yes, for ¥10."
    summary = report.summary()
    assert summary["questions"] == 5 and summary["latency_p95_ms"] >= summary["latency_p50_ms"] > 0


def test_the_eval_command_prints_the_figures(tmp_path: Path, monkeypatch):
    data = tmp_path / "data"

    async def prepare() -> None:
        services = build_services(make_settings(data))
        try:
            await upgrade(services.db)
            await seed(services)
        finally:
            await services.close()

    asyncio.run(prepare())
    cases = tmp_path / "eval.jsonl"
    cases.write_text("\n".join(json.dumps(c, ensure_ascii=False) for c in CASES), encoding="utf-8")
    monkeypatch.setenv("WARBLER_DATA_DIR", str(data))
    monkeypatch.setenv("WARBLER_DATABASE_URL", "")
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal
    runner = CliRunner()
    result = runner.invoke(app, ["kb", "eval", str(cases), "--tenant", "acme", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["questions"] == 4 and figures["passage_questions"] == 3
    assert 0 < figures["recall_at_5"] < 1 and figures["abstention_accuracy"] == 1.0
    table = runner.invoke(app, ["kb", "eval", str(cases), "--tenant", "acme", "--show", "all"])
    assert table.exit_code == 0, table.output
    assert "recall@5" in table.output and "MRR" in table.output and "p95" in table.output
    assert "Who sells the cheapest flights" in table.output
    missing = runner.invoke(app, ["kb", "eval", str(cases), "--tenant", "nope"])
    assert missing.exit_code == 1 and "no tenant" in missing.output
