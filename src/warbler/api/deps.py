"""FastAPI dependencies: the services container and the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from warbler.errors import Unauthenticated
from warbler.im.principal import Principal
from warbler.security.csrf import SESSION_COOKIE, check_csrf
from warbler.security.encryption import tenant_scope
from warbler.security.secrets import TOKEN_PREFIX
from warbler.services import Services

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token (wbt_…) or an API key (wbk_…). With an API key that has the "
    "'impersonate' scope, X-Warbler-User: <user id> acts as that user.",
)


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hop on every request for a dictionary lookup.
    services: Services = request.app.state.services
    return services


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    services: Annotated[Services, Depends(get_services)],
) -> Principal:
    act_as = request.headers.get("x-warbler-user")
    if credentials is None and SESSION_COOKIE in request.cookies:
        # A browser's cookie session (security/csrf.py): unsafe methods need the CSRF header.
        check_csrf(request.method, request.headers, request.cookies)
        session = request.cookies[SESSION_COOKIE]
        if not session.startswith(TOKEN_PREFIX):  # only login sets it, with an access token
            raise Unauthenticated("the session cookie does not hold an access token")
        return await services.auth.authenticate(session, act_as)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send 'Authorization: Bearer <access token or API key>'")
    return await services.auth.authenticate(credentials.credentials, act_as)


async def tenant_principal(
    principal: Annotated[Principal, Depends(get_principal)],
) -> AsyncIterator[Principal]:
    """The principal, with the request acting for its tenant until the response is sent:
    the tenant's data keys loaded, what the request writes encrypted under them."""
    async with tenant_scope(principal.tenant_id):
        yield principal


Svc = Annotated[Services, Depends(get_services)]
Auth = Annotated[Principal, Depends(tenant_principal)]
# The principal alone, for a hot route whose service binds the tenant itself (sending: each
# batch is stored under its tenant's scope). Skips the generator dependency's per-request
# machinery (an exit stack and a shielded cancel scope, ~8 % of a send's CPU).
PrincipalOnly = Annotated[Principal, Depends(get_principal)]
