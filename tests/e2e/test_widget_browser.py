"""The web widget in a real browser (Debian's chromium): the demo company page embeds it with
one script tag; a visitor asks the demo question and gets the bot's cited answer live, the
history survives a reload, the panel fills a phone's screen, and the UI speaks Chinese.
Screenshots land in artifacts/screenshots/ (widget-desktop, widget-phone, widget-zh)."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.browser import api, demo_login, poll, screenshot, watch_errors
from warbler.support.widget.identity import sign_identity_token

pytestmark = pytest.mark.slow

QUESTION = "How many days do I have to return an item?"
QUESTION_ZH = "退款多久能到账？"
# The first answer loads the embedding model in the server: allow for it.
ANSWER_MS = 90_000
FRAME = "warbler-widget iframe"


def open_widget(page: Any, label: str = "Open chat") -> Any:
    page.get_by_role("button", name=label).click()
    frame = page.frame_locator(FRAME)
    frame.locator("#input:not([disabled])").wait_for()
    return frame


def ask(frame: Any, text: str) -> Any:
    """Type ``text``, press Enter, and return the bot's finished answer that follows it."""
    frame.locator("#input").fill(text)
    frame.locator("#input").press("Enter")
    frame.locator(".msg.me:not(.pending)", has_text=text).wait_for()
    answer = frame.locator(".msg.bot:not(.streaming)").last
    answer.locator(".sources li").first.wait_for(timeout=ANSWER_MS)
    return answer


def test_a_visitor_gets_a_cited_answer_that_is_still_there_after_a_reload(demo_server, pages):
    page = pages.new()
    errors = watch_errors(page)
    # The same page without the loader: the globals a browser defines on its own.
    bare = pages.new()
    bare.route("**/widget.js", lambda route: route.abort())
    bare.goto(f"{demo_server.url}/widget/demo")
    baseline = set(bare.evaluate("Object.keys(window)"))
    page.goto(f"{demo_server.url}/widget/demo")
    frame = open_widget(page)
    assert frame.locator("#title").inner_text() == "Brightleaf support"

    answer = ask(frame, QUESTION)
    assert "30 days" in answer.locator(".text").inner_text()
    sources = answer.locator(".sources li").all_inner_texts()
    assert sources and all(s.strip() for s in sources)
    screenshot(page, "widget-desktop")

    # The site's blunt CSS (iframe {max-width: 60%; border: 4px dashed red}) does not reach it.
    box = page.locator(FRAME).bounding_box()
    assert box is not None and round(box["width"]) == 380, box
    assert page.locator(FRAME).evaluate("f => getComputedStyle(f).borderTopWidth") == "0px"
    # One global: window.Warbler.
    assert set(page.evaluate("Object.keys(window)")) - baseline == {"Warbler"}

    # Message text is text, never HTML.
    frame.locator("#input").fill('<img src=x onerror="window.pwned=1"> <b>bold?</b>')
    frame.locator("#input").press("Enter")
    mine = frame.locator(".msg.me:not(.pending)", has_text="<b>bold?</b>")
    mine.wait_for()
    assert mine.locator("img, b").count() == 0
    assert frame.locator("body").evaluate("() => window.pwned") is None

    # Enter while an input method is composing (pinyin) does not send.
    frame.locator("#input").fill("tui")
    frame.locator("#input").evaluate(
        "el => el.dispatchEvent(new KeyboardEvent('keydown', "
        "{key: 'Enter', isComposing: true, bubbles: true, cancelable: true}))"
    )
    assert frame.locator("#input").input_value() == "tui"
    frame.locator("#input").fill("")

    page.reload()
    frame = page.frame_locator(FRAME)  # it was open: it opens again
    frame.locator(".msg.me", has_text=QUESTION).wait_for()
    again = frame.locator(".msg.bot").filter(has_text="30 days").first
    again.locator(".sources li").first.wait_for()
    assert errors == []


def test_on_a_phone_the_chat_fills_the_screen(demo_server, pages):
    page = pages.new(phone=True)
    errors = watch_errors(page)
    page.goto(f"{demo_server.url}/widget/demo")
    frame = open_widget(page)
    box = page.locator(FRAME).bounding_box()
    assert box is not None and (round(box["width"]), round(box["height"])) == (390, 844), box
    answer = ask(frame, "How fast is express delivery?")
    assert answer.locator(".text").inner_text().strip()
    screenshot(page, "widget-phone")
    frame.get_by_role("button", name="Close chat").click()
    page.get_by_role("button", name="Open chat").wait_for()
    assert errors == []


def test_the_widget_speaks_chinese_to_a_chinese_browser(demo_server, pages):
    page = pages.new(locale="zh-CN")
    errors = watch_errors(page)
    page.goto(f"{demo_server.url}/widget/demo")
    frame = open_widget(page, label="打开在线客服")
    assert frame.locator("#title").inner_text() == "明叶家居客服"
    assert frame.locator("#input").get_attribute("placeholder") == "请输入消息…"
    assert "转人工" in frame.locator("#greeting").inner_text()
    answer = ask(frame, QUESTION_ZH)
    assert re.search(r"[\u4e00-\u9fff]", answer.locator(".text").inner_text())
    assert answer.locator(".sources-title").inner_text() == "参考来源"
    screenshot(page, "widget-zh")
    assert errors == []


def test_the_panel_catches_up_after_its_connection_drops(demo_server, pages):
    """The WebSocket is cut and reconnecting is refused while the bot answers; once the
    network is back the panel reconnects and shows the answer it missed, with no reload."""
    context = pages.context()
    sockets: list[Any] = []
    network = {"up": True}

    def route(ws: Any) -> None:
        if not network["up"]:
            ws.close()
            return
        ws.connect_to_server()
        sockets.append(ws)

    context.route_web_socket(re.compile(r".*/api/v1/ws.*"), route)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(f"{demo_server.url}/widget/demo")
    with page.expect_response(re.compile(r".*/sessions$")) as created:
        frame = open_widget(page)
    session = created.value.json()
    frame.locator("#conn").wait_for(state="hidden")  # live
    network["up"] = False
    sockets[-1].close()
    frame.locator("#conn").wait_for(state="visible")  # "Reconnecting…"
    frame.locator("#input").fill("How do I turn on two-factor authentication?")
    frame.locator("#input").press("Enter")
    frame.locator(".msg.me:not(.pending)").wait_for()

    def answered() -> bool:
        with api(demo_server, session["access_token"]) as visitor:
            history = visitor.get(f"/conversations/{session['conversation_id']}/messages")
        return any(
            m["sender_id"] == session["bot"]["id"] and m["data"]["ai"]["status"] == "done"
            for m in history.json()["messages"]
        )

    poll(answered, within=ANSWER_MS / 1000)
    assert frame.locator(".msg.bot").count() == 0  # it happened while the panel was cut off
    network["up"] = True
    frame.locator(".msg.bot .sources li").first.wait_for(timeout=60_000)
    frame.locator("#conn").wait_for(state="hidden")
    assert len(sockets) == 2
    assert errors == []


def test_an_identified_customer_finds_the_conversation_on_another_device(demo_server, pages):
    """The site's backend signs who its customer is; the page calls Warbler.identify(token)."""
    secret = "brightleaf-identity-secret-for-tests"
    with api(demo_server, demo_login(demo_server, "alice")) as admin:
        r = admin.put("/support/settings", json={"identity_secret": secret})
        assert r.status_code == 200, r.text
    now = int(time.time())
    claims = {"sub": "customer-7", "name": "Chen Jing 陈静", "iat": now, "exp": now + 600}

    laptop = pages.new()
    errors = watch_errors(laptop)
    laptop.goto(f"{demo_server.url}/widget/demo")
    laptop.evaluate("token => window.Warbler.identify(token)", sign_identity_token(secret, claims))
    ask(open_widget(laptop), "How fast is express delivery?")

    phone = pages.new(phone=True)  # another device: no shared storage, a fresh token
    phone.goto(f"{demo_server.url}/widget/demo")
    phone.evaluate("token => window.Warbler.identify(token)", sign_identity_token(secret, claims))
    frame = open_widget(phone)
    frame.locator(".msg.me", has_text="How fast is express delivery?").wait_for()
    frame.locator(".msg.bot .sources li").first.wait_for()
    assert errors == []
