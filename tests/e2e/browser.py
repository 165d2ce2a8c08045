"""Browser tests: Debian's chromium driven by Python Playwright, against a real Warbler process.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium`` (or
``WARBLER_CHROMIUM``). Without it (or without the ``playwright`` package) a browser test is
skipped, and fails under ``WARBLER_REQUIRE_SERVICES=1`` (CI), like PostgreSQL and Redis.

The fixtures ``browser``, ``pages`` and ``demo_server`` are registered for every test under
tests/e2e/ by tests/e2e/conftest.py: take them as arguments, import only the helpers::

    from tests.e2e.browser import WAIT_MS, api, demo_login, poll, screenshot, watch_errors

    @pytest.mark.slow
    def test_something(demo_server, pages):
        page = pages.new(phone=True, locale="zh-CN")        # a fresh context each time
        page.goto(f"{demo_server.url}/widget/demo")
        page.get_by_text("…").wait_for(timeout=WAIT_MS)     # bounded waits only
        screenshot(page, "widget-phone")                     # artifacts/screenshots/widget-phone.png
        token = demo_login(demo_server, "agent1")            # an API token for a demo user

``demo_server`` (one per test module) is ``warbler demo`` + ``warbler serve`` on a free port
over a fresh SQLite data dir: the demo tenant with its bot, knowledge base, the support widget
``demo`` and agents ``agent1``/``agent2`` (src/warbler/support/demo.py). It is stopped by PID.
Tests are synchronous (Playwright's sync API); use ``httpx`` for API calls beside the browser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import API, ServerProcess
from tests.services import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("WARBLER_CHROMIUM", "/usr/bin/chromium")
# Every wait in a browser test is bounded; this is the default bound (milliseconds).
WAIT_MS = 20_000
# The demo tenant (src/warbler/demo.py, src/warbler/cli.py): every demo user's password.
DEMO_TENANT = "demo"
DEMO_PASSWORD = "warbler-demo"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save ``artifacts/screenshots/<name>.png`` under the repository root; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def watch_errors(page: Page) -> list[str]:
    """Collect the page's uncaught JavaScript errors and console errors (assert it stays [])."""
    found: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            found.append(f"console: {message.text}")

    page.on("pageerror", lambda exc: found.append(f"pageerror: {exc}"))
    page.on("console", on_console)
    return found


# -- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium for this module (skipped, or failed in CI, when it is missing)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("Playwright", f"`pip install playwright` ({exc})")
    if not os.access(CHROMIUM, os.X_OK):
        unavailable("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


class Pages:
    """Make pages, each in its own browser context (its own cookies and localStorage),
    desktop-sized or phone-sized; every context is closed at the test's end."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[BrowserContext] = []

    def context(self, *, phone: bool = False, locale: str = "en-US", **options: Any) -> Any:
        context = self.browser.new_context(
            **(PHONE if phone else DESKTOP), locale=locale, **options
        )
        context.set_default_timeout(WAIT_MS)
        self.contexts.append(context)
        return context

    def new(self, *, phone: bool = False, locale: str = "en-US", **options: Any) -> Page:
        return self.context(phone=phone, locale=locale, **options).new_page()  # type: ignore[no-any-return]

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    made = Pages(browser)
    yield made
    made.close()


# -- a real server with the demo tenant ---------------------------------------------------


def seed_demo(data_dir: Path, env: dict[str, str] | None = None) -> str:
    """``warbler demo`` over ``data_dir`` (what ``make run`` does); returns its output."""
    out = subprocess.run(
        [sys.executable, "-m", "warbler.cli", "demo"],
        env={**os.environ, "WARBLER_DATA_DIR": str(data_dir), "WARBLER_DATABASE_URL": "",
             "WARBLER_REDIS_URL": "", "WARBLER_LOG_LEVEL": "warning", **(env or {})},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``warbler demo`` then ``warbler serve`` (one process for the module, stopped by PID)."""
    data = tmp_path_factory.mktemp("demo") / "data"
    data.mkdir()
    seed_demo(data)
    server = ServerProcess(data)
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def demo_login(server: ServerProcess, username: str, password: str = DEMO_PASSWORD) -> str:
    """An access token for a demo user (alice, bob, carol, agent1, agent2)."""
    r = httpx.post(
        f"{server.api}/auth/login",
        json={"tenant": DEMO_TENANT, "username": username, "password": password},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def api(server: ServerProcess, token: str) -> httpx.Client:
    """An HTTP client on the server's API prefix, authenticated with ``token``."""
    return httpx.Client(
        base_url=f"{server.url}{API}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def poll(check: Callable[[], Any], *, within: float = 20.0, every: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy (returned) or ``within`` seconds pass
    (AssertionError): a bounded wait for server-side effects outside the browser."""
    import time

    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        time.sleep(every)
