"""The app factory: builds services from settings, mounts the API, runs background work."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from warbler import __version__
from warbler.api import (
    ai_admin,
    api_keys,
    auth,
    bots,
    conversations,
    events,
    files,
    gateway,
    health,
    kb_curated,
    kb_search,
    messages,
    openai_compat,
    search,
    support,
    support_admin,
    support_desk,
    support_widget,
    users,
    web,
)
from warbler.api import audit as audit_api
from warbler.api import errors as api_errors
from warbler.api import jobs as jobs_api
from warbler.api import kb as kb_api
from warbler.api import privacy as privacy_api
from warbler.api import redaction as redaction_api
from warbler.api import tools as tools_api
from warbler.api import webhooks as webhooks_api
from warbler.api.limits import BodyLimit
from warbler.api.nul_guard import RejectNul
from warbler.api.security import install_security
from warbler.api.send_shortcut import SendShortcut
from warbler.config import Settings, load_settings
from warbler.security.audit import request_context
from warbler.security.csrf import with_cookie_token
from warbler.security.proxy import RequestContext
from warbler.services import build_services
from warbler.store.migrate import schema_state, upgrade

API_PREFIX = "/api/v1"
# Routes are matched in order, one regular expression each: the hot path (sending, history)
# goes first, which saves ~50 µs a request against its old place behind 30-odd routes.
ROUTERS = [
    messages.router,
    auth.router,
    users.router,
    api_keys.router,
    conversations.router,
    search.router,
    files.router,
    events.router,
    webhooks_api.router,
    jobs_api.router,
    kb_search.router,
    kb_curated.router,
    kb_api.router,
    tools_api.router,
    bots.router,
    ai_admin.router,
    audit_api.router,
    redaction_api.router,
    privacy_api.router,
    support_widget.router,
    support.router,
    support_admin.router,
    support_desk.router,
    gateway.router,
]

log = logging.getLogger("warbler")
GATEWAY_PATH = f"{API_PREFIX}/ws"


class WarblerApp(FastAPI):
    """The app, with one shortcut ahead of the middlewares: a WebSocket handshake for the
    gateway goes straight to it, with what the middlewares would have done for it done here
    (client address and audit context, a same-origin cookie session's token). An idle
    connection then holds two coroutine frames instead of fifteen: ~5 KB a socket at 10k
    (BENCHMARKS.md). HTTP requests, other paths and lifespan run the full stack."""

    gateway_context: RequestContext

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] != GATEWAY_PATH or self.root_path:
            return await super().__call__(scope, receive, send)
        scope["app"] = self
        token = request_context.set(self.gateway_context.resolve(scope))
        try:
            await gateway.serve(with_cookie_token(scope), receive, send)
        finally:
            request_context.reset(token)
        return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    services = build_services(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await upgrade(services.db)
        elif await schema_state(services.db) == "behind":
            # Workers would fail on every poll against missing tables: refuse to start.
            raise RuntimeError(
                "the database schema is older than this code: run `warbler migrate` first "
                "(or set WARBLER_AUTO_MIGRATE=true)"
            )
        await services.bus.start()
        await services.start_background()
        try:
            yield
        finally:
            services.hub.close_all("shutdown")
            await services.stop_background()
            await services.close()

    app = WarblerApp(
        title="Warbler",
        version=__version__,
        summary="Self-hosted intelligent chat server: messaging and AI bots in one API.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    app.gateway_context = RequestContext(app, trusted_proxies=settings.trusted_proxies)
    api_errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    health.install(app)  # /health and /ready, outside the API prefix
    app.include_router(openai_compat.router)  # /v1: the OpenAI-compatible API
    app.include_router(web.router)  # /widget.js, /widget/frame, /console: warbler/web/
    # Innermost: plain sends skip the router (api/send_shortcut.py).
    app.add_middleware(SendShortcut, prefix=API_PREFIX)
    app.add_middleware(
        BodyLimit,
        default=settings.max_request_bytes,
        upload=settings.max_upload_bytes,
        upload_paths=("/files",),
        more_uploads={
            "/documents": settings.kb_max_document_bytes,  # POST /kb/{id}/documents
            "/curated/import": settings.kb_max_document_bytes,  # POST /kb/{id}/curated/import
        },
    )
    app.add_middleware(RejectNul)  # no U+0000 in paths or query strings (api/nul_guard.py)
    # Outermost (added last): client IP and scheme, security headers, cookie WebSockets.
    install_security(app, settings)
    return app
