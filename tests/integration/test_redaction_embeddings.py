"""A remote embedder (``WARBLER_KB_EMBEDDER=openai``) never receives personal data: queries,
document passages and curated questions leave the machine masked."""

from __future__ import annotations

import json

import pytest

from tests.conftest import backend_settings, make_settings
from tests.integration.test_ai_replies import ingest
from warbler.config import Settings
from warbler.im.principal import Principal
from warbler.kb.embedders.factory import build_embedder

PHONE, EMAIL, ID_NUMBER = "13812345678", "refunds.desk@example.com", "11010519491231002X"
DOC = f"""# 退款

退款请联系客服邮箱 {EMAIL} 或致电 {PHONE}。退款会在 5 个工作日内原路退回。

# Refunds

Write to {EMAIL} or call {PHONE}; refunds are paid back within 5 business days.
"""


@pytest.fixture
def settings(tmp_path, backend, request, fake_openai) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data",
        kb_embedder="openai", kb_embedder_url=fake_openai.base_url, kb_embedder_model="emb",
    )  # fmt: skip


def embedding_inputs(fake) -> list[str]:
    out: list[str] = []
    for r in fake.requests:
        if r.path.endswith("/embeddings"):
            inputs = r.body["input"]
            out += [inputs] if isinstance(inputs, str) else list(inputs)
    return out


async def test_the_remote_embedder_never_receives_a_raw_value(services, make_tenant, fake_openai):
    tenant = await make_tenant()
    owner = await tenant.user("olive", role="owner")
    admin = Principal(tenant_id=tenant.id, user_id=owner.id, role="owner")
    kb_id = await ingest(services, admin, {"refunds.md": DOC})
    await services.curated.create(
        admin, kb_id, questions=[f"我的身份证 {ID_NUMBER} 能退款吗？"], answer="可以。"
    )
    await services.retriever.retrieve(
        admin, f"My phone is {PHONE} and my ID {ID_NUMBER}: how do refunds work?"
    )

    inputs = embedding_inputs(fake_openai)
    sent = json.dumps(inputs, ensure_ascii=False)
    assert all(v not in sent for v in (PHONE, EMAIL, ID_NUMBER))
    # The query, the passages and the curated question were all sent, masked.
    assert "My phone is [PHONE] and my ID [ID_NUMBER]: how do refunds work?" in inputs
    assert any("[EMAIL]" in t and "[PHONE]" in t for t in inputs)
    assert "我的身份证 [ID_NUMBER] 能退款吗？" in inputs


async def test_an_empty_detector_list_sends_embeddings_as_they_are(tmp_path, fake_openai):
    embedder = build_embedder(make_settings(
        tmp_path, kb_embedder="openai", kb_embedder_url=fake_openai.base_url,
        redaction_embeddings=[],
    ))  # fmt: skip
    await embedder.embed_queries([f"call {PHONE}"])
    await embedder.aclose()  # type: ignore[attr-defined]
    assert embedding_inputs(fake_openai) == [f"call {PHONE}"]
