"""The agent console's own tools in a real browser: take over a bot conversation, save a reply
as a curated answer in one click, transfer to another agent, text that looks like HTML stays
text, the Chinese UI, and signing out. The visitor side goes through the API here (the
widget has its own tests); tests/e2e/test_support_browser.py is the whole journey."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.browser import api, demo_login, poll, watch_errors

pytestmark = pytest.mark.slow

QUESTION = "How many days do I have to return an item?"
REPLY = "You have 30 days from delivery to return an item, in its original packaging."
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> & 你好'


def visitor_session(base: str) -> dict[str, Any]:
    r = httpx.post(f"{base}/api/v1/support/widget/demo/sessions", json={"locale": "en"}, timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def visitor_says(base: str, session: dict[str, Any], text: str) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/api/v1/conversations/{session['conversation_id']}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {session['access_token']}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def sign_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console")
    page.fill("#login-tenant", "demo")
    page.fill("#login-username", username)
    page.fill("#login-password", "warbler-demo")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#app-view", state="visible")


def test_agent_takes_over_saves_an_answer_and_transfers(demo_server, pages):
    base = demo_server.url
    agent_api = api(demo_server, demo_login(demo_server, "agent1"))
    agents = agent_api.get("/support/agents").json()
    agent2_id = next(a["user_id"] for a in agents if a["username"] == "agent2")
    visitor = visitor_session(base)
    conversation_id = visitor["conversation_id"]
    visitor_says(base, visitor, QUESTION)

    page = pages.new(locale="en-US")
    errors = watch_errors(page)
    sign_in(page, base, "agent1")

    # The bot has the conversation: it is under "Bot conversations"; take it over.
    row = page.locator(f'#bot-list li.row[data-conversation-id="{conversation_id}"]')
    row.wait_for()
    row.locator("button.takeover").click()
    page.wait_for_selector(f'#mine-list li.row.selected[data-conversation-id="{conversation_id}"]')
    ticket = agent_api.get("/support/tickets", params={"assignee_id": "me"}).json()[0]
    assert ticket["reason"] == "agent_takeover" and ticket["conversation_id"] == conversation_id
    page.locator("#timeline li.msg.visitor").filter(has_text=QUESTION).wait_for()

    # Reply, then "Save as answer" under it: one knowledge base, so one click.
    page.fill("#composer-text", REPLY)
    page.click("#send-button")
    answer = page.locator("#timeline li.msg.agent").filter(has_text=REPLY)
    answer.wait_for()
    answer.locator("button.save-answer").click()
    answer.locator(".saved-answer").wait_for()
    kb_id = agent_api.get("/kb").json()[0]["id"]
    curated = agent_api.get(f"/kb/{kb_id}/curated").json()
    saved = [c for c in curated if c["answer"] == REPLY]
    assert saved and QUESTION in saved[0]["questions"], curated

    # What a visitor writes is shown as text, never run as HTML.
    visitor_says(base, visitor, HOSTILE)
    page.locator("#timeline li.msg.visitor").filter(has_text="onerror").wait_for()
    assert page.locator("#timeline img, #timeline script").count() == 0
    assert page.evaluate("() => window.__pwned") is None
    assert HOSTILE in page.locator("#timeline").inner_text()

    # Transfer to agent2: assigned to them at once; here the reply box closes.
    page.select_option("#conv-header select.transfer-target", f"agent:{agent2_id}")
    page.click("#conv-header button.transfer")
    poll(
        lambda: agent_api.get(f"/support/tickets/{ticket['id']}").json()["assignee_id"] == agent2_id
    )
    page.wait_for_selector("#composer-text:disabled")
    page.wait_for_selector(
        f'#mine-list li.row[data-conversation-id="{conversation_id}"]', state="detached"
    )

    # 中文: the whole UI switches, and stays so (with the session) across a reload.
    page.click("#app-view .lang-toggle")
    assert page.inner_text('.tab[data-tab="inbox"]') == "会话"
    assert "客服接管" in page.inner_text("#conv-header")
    page.reload()
    page.wait_for_selector("#app-view", state="visible")
    assert page.inner_text('.tab[data-tab="reports"]') == "报表"

    # Sign out: offline, the token revoked, the sign-in form back.
    token = page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('warbler.console.session')).access_token"
    )
    page.click("#logout")
    page.wait_for_selector("#login-form", state="visible")
    assert agent_api.get("/support/agents/me").json()["status"] == "offline"
    revoked = httpx.get(f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401

    assert [e for e in errors if "Failed to load resource" not in e] == []
    agent_api.close()
