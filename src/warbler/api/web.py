"""Serving ``warbler/web/``: the widget loader (``/widget.js``), the pages (``/widget/frame``,
``/widget/demo``, ``/console``, ...) with their Content-Security-Policy, and their assets.
What is served, and how to add a page, is described in ``warbler/web/__init__.py``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response

from warbler import web
from warbler.api.deps import get_services
from warbler.errors import NotFound

router = APIRouter(include_in_schema=False)

# An origin as CSP frame-ancestors accepts it: scheme://host[:port], host may start "*.".
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")
_ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def content_security_policy(frame_ancestors: str) -> str:
    # connect-src 'self' covers this origin's ws:/wss: too (CSP level 3).
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; frame-src 'self'; object-src 'none'; "
        f"base-uri 'none'; form-action 'self'; frame-ancestors {frame_ancestors}"
    )


def _respond(request: Request, found: web.StaticFile, headers: dict[str, str]) -> Response:
    headers = {"ETag": found.etag, "X-Content-Type-Options": "nosniff", **headers}
    headers.setdefault("Cache-Control", "no-cache")  # revalidate: a new release shows at once
    if found.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.content_type, headers=headers)


@router.api_route("/widget.js", methods=["GET", "HEAD"])
async def loader(request: Request) -> Response:
    """The one script a site embeds: adds the launcher button and the chat frame."""
    found = web.load(web.LOADER, web.ASSET_TYPES[".js"])
    if found is None:
        raise NotFound("the widget loader is missing from this installation")
    return _respond(request, found, {
        "Cache-Control": "public, max-age=300",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    })  # fmt: skip


async def _frame_ancestors(request: Request, page: web.Page) -> str:
    if page.frame == "none":
        return "'none'"
    if page.frame == "self":
        return "'self'"
    widget_id = request.query_params.get("w", "")
    services = await get_services(request)
    origins = await services.support_widget.frame_ancestors(widget_id)
    valid = [o for o in origins if _ORIGIN.match(o)]
    # An empty list means any site; a list with only invalid entries allows none.
    return "*" if not origins else " ".join(valid) or "'none'"


def _page_route(page: web.Page) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        found = web.load(page.file, web.HTML)
        if found is None:
            raise NotFound("no such page", details={"path": page.url})
        csp = content_security_policy(await _frame_ancestors(request, page))
        return _respond(request, found, {
            "Content-Security-Policy": csp,
            "Referrer-Policy": "strict-origin-when-cross-origin",
        })  # fmt: skip

    return serve


def _asset_route(folder: str) -> Callable[[Request, str], Awaitable[Response]]:
    async def serve(request: Request, name: str) -> Response:
        content_type = web.ASSET_TYPES.get("." + name.rsplit(".", 1)[-1].lower())
        found = None
        if content_type is not None and _ASSET_NAME.match(name):
            found = web.load(f"{folder}/{name}", content_type)
        if found is None:
            raise NotFound("no such file", details={"path": f"/{folder}/{name}"})
        return _respond(request, found, {})

    return serve


for _page in web.all_pages():
    router.add_api_route(_page.url, _page_route(_page), methods=["GET", "HEAD"])
for _folder in web.asset_folders():
    router.add_api_route(f"/{_folder}/{{name}}", _asset_route(_folder), methods=["GET", "HEAD"])
