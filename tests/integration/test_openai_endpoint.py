"""The official ``openai`` package, pointed at Warbler's ``/v1``, talks to a bot."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import backend_settings
from tests.fakes.openai_wire import FakeOpenAI, Reply
from tests.integration.test_ai_replies import REFUNDS, make_world
from warbler.config import Settings
from warbler.services import Services


@pytest.fixture
def settings(tmp_path, backend, request) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allow_private=True,  # the fake vendor listens on 127.0.0.1
        ai_max_retries=1,
        ai_retry_base_seconds=0.01,
        ai_idle_timeout_seconds=0.6,
        ai_request_timeout_seconds=3.0,
        ai_user_messages_per_minute=0,
        ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


def sdk(app, key: str) -> openai.AsyncOpenAI:
    transport = httpx.ASGITransport(app=app)
    return openai.AsyncOpenAI(
        base_url="http://test/v1",
        api_key=key,
        http_client=httpx.AsyncClient(transport=transport, base_url="http://test/v1"),
        max_retries=0,
    )


async def _bot_username(services: Services, tenant_id: str, user_id: str) -> str:
    user = await services.users.get(tenant_id, user_id)
    return str(user["username"])


async def test_the_openai_client_gets_a_plain_and_a_streamed_answer(
    app, services, make_tenant, fake_openai
):
    w = await make_world(services, make_tenant, fake_openai)
    key = await services.auth.create_api_key(
        w.tenant_id, name="sdk", scopes=["bots:use"], created_by=None
    )
    client = sdk(app, key["key"])
    model = await _bot_username(services, w.tenant_id, w.bot["user_id"])

    models = await client.models.list()
    assert [m.id for m in models.data] == [model]

    fake_openai.script(Reply(text="Hello from the bot", usage=(11, 4)))
    answer = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi there"}]
    )
    assert answer.choices[0].message.content == "Hello from the bot"
    assert answer.usage is not None and answer.usage.total_tokens == 15
    # The bot's persona reached the model ahead of the client's messages.
    sent = fake_openai.requests[-1].body["messages"]
    assert sent[0]["role"] == "system" and "You are Helper" in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "hi there"}

    fake_openai.script(Reply(text="你好 ， 这是 流式 回答", usage=(9, 5)))
    stream = await client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "你好"},
        ],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) > 1, "the answer arrived in several chunks"
    assert "".join(pieces) == "你好 ， 这是 流式 回答"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 5
    system = fake_openai.requests[-1].body["messages"][0]["content"]
    assert "You are Helper" in system and "Be brief." in system

    rows = await services.ai_usage.list(w.tenant_id)
    assert len(rows) == 2 and {r["source"] for r in rows} == {"openai_api"}


async def test_a_bot_without_a_provider_answers_with_citations_through_the_api(
    app, services, make_tenant
):
    w = await make_world(services, make_tenant, kb_docs={"refunds.md": REFUNDS})
    key = await services.auth.create_api_key(
        w.tenant_id, name="sdk", scopes=["bots:use", "kb:read"], created_by=None
    )
    client = sdk(app, key["key"])
    model = await _bot_username(services, w.tenant_id, w.bot["user_id"])
    answer = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "How long do refunds take?"}]
    )
    body = answer.model_dump()
    assert "5 business days" in body["choices"][0]["message"]["content"]
    assert body["citations"] and body["citations"][0]["title"]
    assert body["warbler"]["status"] == "answered"


async def test_api_keys_need_the_bots_use_scope_and_only_see_their_tenant(
    app, services, make_tenant, fake_openai
):
    w = await make_world(services, make_tenant, fake_openai)
    model = await _bot_username(services, w.tenant_id, w.bot["user_id"])
    weak = await services.auth.create_api_key(
        w.tenant_id, name="weak", scopes=["users:read"], created_by=None
    )
    with pytest.raises(openai.PermissionDeniedError):
        await sdk(app, weak["key"]).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )

    other = await services.users.create_tenant(slug="other", name="Other")
    foreign = await services.auth.create_api_key(
        other["id"], name="x", scopes=["bots:use"], created_by=None
    )
    with pytest.raises(openai.NotFoundError):
        await sdk(app, foreign["key"]).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
    assert (await sdk(app, foreign["key"]).models.list()).data == []
    assert fake_openai.requests == [], "no refused call reached the model"


async def test_bad_requests_get_clear_errors_and_no_model_call(
    app, services, make_tenant, fake_openai
):
    w = await make_world(services, make_tenant, fake_openai)
    key = await services.auth.create_api_key(
        w.tenant_id, name="sdk", scopes=["bots:use"], created_by=None
    )
    client = sdk(app, key["key"])
    model = await _bot_username(services, w.tenant_id, w.bot["user_id"])
    cases = [
        {"messages": []},
        {"messages": [{"role": "assistant", "content": "last turn is not the user's"}]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        {"messages": [{"role": "wizard", "content": "?"}]},
    ]
    for case in cases:
        with pytest.raises(openai.BadRequestError) as err:
            await client.chat.completions.create(model=model, **case)
        assert err.value.body["code"] == "invalid_request"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        )
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(
            model="no-such-bot", messages=[{"role": "user", "content": "hi"}]
        )
    assert fake_openai.requests == []


async def test_an_exhausted_quota_is_a_429_before_any_model_call(
    app, services, make_tenant, fake_openai: FakeOpenAI
):
    w = await make_world(services, make_tenant, fake_openai, quotas={"messages_per_minute": 1})
    key = await services.auth.create_api_key(
        w.tenant_id, name="sdk", scopes=["bots:use"], created_by=None
    )
    client = sdk(app, key["key"])
    model = await _bot_username(services, w.tenant_id, w.bot["user_id"])
    await client.chat.completions.create(model=model, messages=[{"role": "user", "content": "1"}])
    calls = len(fake_openai.requests)
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as err:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "2"}], stream=stream
            )
        assert err.value.body["code"] == "quota_exceeded"
    assert len(fake_openai.requests) == calls
