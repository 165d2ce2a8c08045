"""The pages Warbler serves itself: plain HTML, CSS and JavaScript files, no build step and
no CDN (the web widget in ``web/widget/``, the agent console in ``web/console/``).

How a folder here is served (``api/web.py``):

- Its assets: ``web/<folder>/<file>`` is served at ``/<folder>/<file>`` for ``.js``, ``.mjs``,
  ``.css``, ``.svg``, ``.png``, ``.ico``, ``.json`` and ``.woff2`` files (one level, no
  sub-folders; ES modules are fine: ``<script type="module" src="/console/main.js">``).
  Every subfolder is picked up on its own.
- Its page: ``web/<folder>/index.html``, if there is one, is served at ``/<folder>`` (e.g.
  ``/console``), with a strict Content-Security-Policy (scripts, styles, images, fetch and
  WebSocket from this origin only; no inline scripts or styles; not embeddable in frames).
- Any other page, or a page with another frame policy: add a ``Page`` to ``PAGES`` below,
  e.g. ``Page("/console/help", "console/help.html")`` or ``Page("/x", "x/index.html",
  frame="self")``.

HTML files are never served as assets, only as pages, so every page carries its CSP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

WEB_DIR = Path(__file__).resolve().parent

ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".woff2": "font/woff2",
}
HTML = "text/html; charset=utf-8"

# Who may show a page in a frame: nobody, pages of this origin, or (the widget's frame) the
# sites in the tenant's support settings ``allowed_origins`` (empty: any site).
FramePolicy = Literal["none", "self", "widget"]


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # where it is served (outside /api/v1)
    file: str  # relative to WEB_DIR
    frame: FramePolicy = "none"


PAGES: list[Page] = [
    # The widget's chat panel, inside the iframe the loader (/widget.js) adds to a site.
    Page("/widget/frame", "widget/frame.html", frame="widget"),
    # A demo company page that embeds the widget with the one <script> tag.
    Page("/widget/demo", "widget/demo.html", frame="self"),
]
# The loader a company puts on its site: <script src="https://HOST/widget.js" ...>.
LOADER = "widget/loader.js"


def asset_folders() -> list[str]:
    return sorted(
        p.name for p in WEB_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )


def all_pages() -> list[Page]:
    """``PAGES`` plus the ``index.html`` of every folder (at ``/<folder>``)."""
    listed = {p.url for p in PAGES}
    found = [
        Page(f"/{folder}", f"{folder}/index.html")
        for folder in asset_folders()
        if (WEB_DIR / folder / "index.html").is_file() and f"/{folder}" not in listed
    ]
    return [*PAGES, *found]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    etag: str
    content_type: str


_cache: dict[Path, tuple[float, StaticFile]] = {}


def load(relative: str, content_type: str) -> StaticFile | None:
    """The file at ``WEB_DIR/relative`` (None if missing or outside WEB_DIR), cached until
    it changes on disk."""
    path = (WEB_DIR / relative).resolve()
    if WEB_DIR not in path.parents or not path.is_file():
        return None
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    body = path.read_bytes()
    found = StaticFile(body, f'"{hashlib.sha256(body).hexdigest()[:20]}"', content_type)
    _cache[path] = (mtime, found)
    return found
