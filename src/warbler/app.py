"""The app factory: builds services from settings, mounts the API, runs background work."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

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

    app = FastAPI(
        title="Warbler",
        version=__version__,
        summary="Self-hosted intelligent chat server: messaging and AI bots in one API.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.services = services
    api_errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    health.install(app)  # /health and /ready, outside the API prefix
    app.include_router(openai_compat.router)  # /v1: the OpenAI-compatible API
    app.include_router(web.router)  # /widget.js, /widget/frame, /console: warbler/web/
    # Innermost: WebSocket handshakes for the gateway and plain sends skip the router
    # (api/gateway.py, api/send_shortcut.py).
    app.add_middleware(gateway.WebSocketShortcut, path=f"{API_PREFIX}/ws")
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
