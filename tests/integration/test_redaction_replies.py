"""PII redaction at the egress point: a bot whose provider is the OpenAI-wire fake on a real
socket gets conversations full of personal data (zh + en). Every request the fake receives,
streamed, tool rounds and memory summaries included, holds none of the raw values; the user
sees them back in the answer; tools (which run here) get the real values. Block mode sends
nothing; allow mode sends the text as it is.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.conftest import backend_settings, send
from tests.fakes.http_target import HttpTarget
from tests.fakes.openai_wire import FakeOpenAI, RecordedRequest, Reply
from tests.integration.test_ai_replies import dm, finished_reply, make_world, quiet
from warbler.ai.engine import SUMMARY_PROMPT
from warbler.config import Settings
from warbler.security.redaction.errors import RedactionBlocked

PHONE = "13812345678"
OTHER_PHONE = "139 0000 1111"
ID_NUMBER = "11010519491231002X"
CARD = "6222 0212 3456 7890 128"
EMAIL = "john.doe@example.org"
US_PHONE = "(415) 555-2671"
IPV4, IPV6 = "203.0.113.7", "2001:db8::8a2e:370:7334"
EMPLOYEE = "EMP-004211"
KEYWORD = "蓝海计划"
PERSONA_EMAIL = "escalate.wang@corp.example.cn"
RAW = [PHONE, "13900001111", OTHER_PHONE, ID_NUMBER, "6222021234567890128", CARD, EMAIL,
       "555-2671", IPV4, IPV6, EMPLOYEE, KEYWORD, PERSONA_EMAIL]  # fmt: skip
PLACEHOLDER = re.compile(r"\[[A-Z_]+_[0-9]+\]")

EN_TURN = (
    f"Hi, I'm John. Email {EMAIL}, card {CARD}, office {US_PHONE}; I log in from {IPV4} and {IPV6}."
)
ZH_TURN = (
    f"我的手机号{PHONE}谢谢，备用{OTHER_PHONE}，身份证{ID_NUMBER}，{KEYWORD}的工号{EMPLOYEE}，"
    "请帮我查一下订单。"
)


@pytest.fixture
def settings(tmp_path, backend, request) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allow_private=True,  # the fake vendor and the HTTP tool listen on 127.0.0.1
        outbound_allowed_hosts=["127.0.0.1"],
        ai_max_retries=0,
        ai_request_timeout_seconds=5.0,
        ai_stream_flush_ms=10,
        ai_user_messages_per_minute=0,
        ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


@pytest.fixture
def target():
    with HttpTarget() as t:
        yield t


def placeholders(text: str) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def answer_with_placeholders(request: RecordedRequest) -> Reply:
    """The model's side: a summary when asked for one; a lookup of the first phone
    placeholder when the tool is offered; else every placeholder it was sent in the last
    user turn and after it, echoed back in chunks that split them."""
    body = request.body
    messages = body["messages"]
    if messages[0]["content"].startswith(SUMMARY_PROMPT[:40]):
        return Reply(text="Summary: " + " ".join(placeholders(json.dumps(messages))))
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    tail = messages[last_user:]
    phones = [p for p in placeholders(tail[0]["content"]) if p.startswith("[PHONE")]
    if body.get("tools") and len(tail) == 1 and phones:
        return Reply(tool_calls=[("lookup", {"phone": phones[0], "note": f"客户 {phones[0]}"})])
    seen = placeholders(json.dumps(tail, ensure_ascii=False))
    return Reply(text="收到：" + " ".join(seen) + " 好的。", chunks_per_word=3)


def assert_no_raw_value(fake: FakeOpenAI) -> None:
    assert fake.requests, "the fake model was never called"
    for r in fake.requests:
        sent = json.dumps(r.body, ensure_ascii=False)
        leaked = [v for v in RAW if v in sent]
        assert not leaked, f"{r.path} received {leaked}: {sent[:400]}"


async def redaction_world(services, client, make_tenant, fake, target, **bot_fields: Any):
    w = await make_world(
        services, make_tenant, fake,
        persona=f"You are Helper. Escalate refunds to Manager Wang, {PERSONA_EMAIL}.",
        **bot_fields,
    )  # fmt: skip
    r = await client.post("/tools/http", headers=w.owner.headers, json={
        "name": "lookup", "method": "POST", "description": "Find a customer by phone.",
        "url_template": f"{target.url}/echo/customer",
        "parameters": {"type": "object", "required": ["phone"], "properties": {
            "phone": {"type": "string"}, "note": {"type": "string"}}},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.patch(f"/bots/{w.bot['id']}", headers=w.owner.headers,
                           json={"tools": ["http:lookup"]})  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.put("/security/redaction", headers=w.owner.headers, json={
        "mode": "redact", "keywords": [KEYWORD],
        "patterns": [{"name": "employee_id", "pattern": r"EMP-\d{6}"}],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    return w


async def test_the_model_never_receives_a_raw_value_and_the_user_sees_them_restored(
    client, services, make_tenant, fake_openai, target
):
    w = await redaction_world(services, client, make_tenant, fake_openai, target,
                              context_tokens=700)  # fmt: skip
    fake_openai.responder = answer_with_placeholders
    conv = await dm(client, w.owner, w.bot["user_id"])
    first = await send(client, w.owner, conv, EN_TURN)
    reply1 = await finished_reply(client, w.owner, conv, first["id"])
    for n in range(3):  # a longer history, so that memory summaries are asked for
        trigger = await send(client, w.owner, conv, f"Also note {EMAIL} and {IPV4}, item {n}. " * 6)
        await finished_reply(client, w.owner, conv, trigger["id"])
    second = await send(client, w.owner, conv, ZH_TURN)
    reply2 = await finished_reply(client, w.owner, conv, second["id"])
    await quiet(services, w.tenant_id)

    assert_no_raw_value(fake_openai)
    bodies = [r.body for r in fake_openai.chat_requests]
    assert all(b.get("stream") for b in bodies)  # the streamed path
    assert any(m["content"].startswith(SUMMARY_PROMPT[:40]) for b in bodies
               for m in b["messages"][:1])  # fmt: skip
    # The tool round: the call's arguments came back with values before the tool ran...
    called = [t.body for t in target.requests]
    assert {"phone": US_PHONE, "note": f"客户 {US_PHONE}"} in called  # the English turn's
    assert {"phone": PHONE, "note": f"客户 {PHONE}"} in called  # the Chinese turn's
    # ...and the tool's answer (it echoes them) went back to the model redacted.
    tool_turns = [m for b in bodies for m in b["messages"] if m["role"] == "tool"]
    assert tool_turns and all("[PHONE_" in m["content"] for m in tool_turns)
    # The persona (system prompt) was redacted too, with the same placeholder every time.
    systems = {b["messages"][0]["content"] for b in bodies if "Manager Wang" in
               b["messages"][0]["content"]}  # fmt: skip
    assert systems and all("[EMAIL_1]" in s for s in systems)

    # What the user sees: every value is back where the model put its placeholder.
    assert reply1["data"]["ai"]["status"] == "done"
    for value in (EMAIL, CARD, US_PHONE, IPV4, IPV6):
        assert value in reply1["text"], reply1["text"]
    for value in (PHONE, OTHER_PHONE, ID_NUMBER, KEYWORD, EMPLOYEE):
        assert value in reply2["text"], reply2["text"]
    assert not PLACEHOLDER.search(reply1["text"] + reply2["text"])
    assert reply2["data"]["ai"]["tools"] == [{"name": "lookup", "ok": True}]


async def completion(client: httpx.AsyncClient, headers: dict[str, str], model: str,
                     text: str, *, stream: bool) -> httpx.Response:  # fmt: skip
    return await client.post(
        "http://test/v1/chat/completions", headers=headers,
        json={"model": model, "stream": stream, "messages": [
            {"role": "system", "content": f"The customer's email is {EMAIL}."},
            {"role": "user", "content": text},
        ]},
    )  # fmt: skip


async def bot_model(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    r = await client.get("http://test/v1/models", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["data"][0]["id"])


async def test_the_openai_compatible_api_streams_restored_values_and_sends_placeholders(
    client, services, make_tenant, fake_openai, target
):
    w = await redaction_world(services, client, make_tenant, fake_openai, target)
    fake_openai.responder = answer_with_placeholders
    model = await bot_model(client, w.owner.headers)
    r = await completion(client, w.owner.headers, model, ZH_TURN + " " + EN_TURN, stream=True)
    assert r.status_code == 200, r.text
    chunks = [json.loads(line[6:]) for line in r.text.splitlines()
              if line.startswith("data: {")]  # fmt: skip
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert_no_raw_value(fake_openai)
    assert len(fake_openai.chat_requests) == 2  # the tool round, then the answer
    for value in (PHONE, ID_NUMBER, KEYWORD, EMPLOYEE, EMAIL, CARD, IPV6):
        assert value in text, text
    assert not PLACEHOLDER.search(text)


async def test_block_mode_sends_nothing_and_says_why(
    client, services, make_tenant, fake_openai, target
):
    w = await redaction_world(services, client, make_tenant, fake_openai, target)
    r = await client.put("/security/redaction", headers=w.owner.headers, json={
        "mode": "block", "keywords": [KEYWORD],
        "patterns": [{"name": "employee_id", "pattern": r"EMP-\d{6}"}],
    })  # fmt: skip
    assert r.status_code == 200, r.text
    conv = await dm(client, w.owner, w.bot["user_id"])

    trigger = await send(client, w.owner, conv, ZH_TURN)
    reply = await finished_reply(client, w.owner, conv, trigger["id"])
    await quiet(services, w.tenant_id)
    assert fake_openai.requests == []
    found = ["cn_mobile", "cn_id", "keyword", "pattern:employee_id"]
    expected = RedactionBlocked(found, "zh").user_message("zh")
    assert reply["text"] == expected and "手机号" in reply["text"]

    model = await bot_model(client, w.owner.headers)
    r = await completion(client, w.owner.headers, model, EN_TURN, stream=False)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "pii_blocked" and "email address" in error["message"]
    assert not any(v in r.text for v in RAW)
    assert fake_openai.requests == []

    # A question without personal data is answered; the blocked one, still in the
    # history, goes out redacted.
    fake_openai.script(Reply(text="Refunds take 5 days."))
    trigger = await send(client, w.owner, conv, "How long do refunds take?")
    reply = await finished_reply(client, w.owner, conv, trigger["id"])
    assert reply["text"] == "Refunds take 5 days."
    assert_no_raw_value(fake_openai)
    sent = json.dumps(fake_openai.chat_requests[0].body, ensure_ascii=False)
    assert "[PHONE_1]" in sent


async def test_allow_mode_sends_the_text_as_it_is(client, services, make_tenant, fake_openai):
    w = await make_world(services, make_tenant, fake_openai)
    r = await client.put("/security/redaction", headers=w.owner.headers, json={"mode": "allow"})
    assert r.status_code == 200, r.text
    fake_openai.script(Reply(text="ok"))
    conv = await dm(client, w.owner, w.bot["user_id"])
    trigger = await send(client, w.owner, conv, ZH_TURN)
    await finished_reply(client, w.owner, conv, trigger["id"])
    sent = json.dumps(fake_openai.chat_requests[0].body, ensure_ascii=False)
    assert PHONE in sent and ID_NUMBER in sent and KEYWORD in sent


async def test_restore_off_shows_the_placeholders(client, services, make_tenant, fake_openai):
    w = await make_world(services, make_tenant, fake_openai)
    r = await client.put("/security/redaction", headers=w.owner.headers, json={"restore": False})
    assert r.status_code == 200, r.text
    fake_openai.responder = answer_with_placeholders
    conv = await dm(client, w.owner, w.bot["user_id"])
    trigger = await send(client, w.owner, conv, f"我的手机号{PHONE}")
    reply = await finished_reply(client, w.owner, conv, trigger["id"])
    assert "[PHONE_1]" in reply["text"] and PHONE not in reply["text"]
    assert_no_raw_value(fake_openai)


async def test_a_fallback_to_anthropic_gets_the_same_placeholders_and_the_answer_is_restored(
    client, services, make_tenant, fake_openai, fake_anthropic
):
    w = await make_world(services, make_tenant, fake_openai)
    claude = await services.ai_providers.create(
        w.admin, {"name": "claude", "kind": "anthropic", "base_url": fake_anthropic.base_url,
                  "model": "claude-test"}, api_key="sk-ant-test",
    )  # fmt: skip
    first = w.bot["provider_ids"][0]
    r = await client.patch(f"/bots/{w.bot['id']}", headers=w.owner.headers,
                           json={"provider_ids": [first, claude["id"]]})  # fmt: skip
    assert r.status_code == 200, r.text
    fake_openai.script(Reply(status=400, error_message="model not found"))  # -> next provider
    conv = await dm(client, w.owner, w.bot["user_id"])
    text = f"我的手机号{PHONE}，邮箱 {EMAIL}"
    trigger = await send(client, w.owner, conv, text)
    reply = await finished_reply(client, w.owner, conv, trigger["id"])

    assert reply["text"] == f"echo: {text}"  # the fake echoes what it got: placeholders
    assert reply["data"]["ai"]["provider"] == "anthropic:claude"
    sent = [json.dumps(f.requests[0].body, ensure_ascii=False)
            for f in (fake_openai, fake_anthropic)]  # fmt: skip
    for body in sent:
        assert PHONE not in body and EMAIL not in body
        assert "我的手机号[PHONE_1]，邮箱 [EMAIL_1]" in body
