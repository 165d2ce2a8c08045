"""Browser-test fixtures (``browser``, ``pages``, ``demo_server``) for every e2e test module:
see tests/e2e/browser.py."""

from tests.e2e.browser import browser, demo_server, pages

__all__ = ["browser", "demo_server", "pages"]
