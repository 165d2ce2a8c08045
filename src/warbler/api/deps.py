"""FastAPI dependencies: the services container and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from warbler.errors import Unauthenticated
from warbler.im.principal import Principal
from warbler.services import Services

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token (wbt_…) or an API key (wbk_…). With an API key that has the "
    "'impersonate' scope, X-Warbler-User: <user id> acts as that user.",
)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    services: Annotated[Services, Depends(get_services)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send 'Authorization: Bearer <access token or API key>'")
    act_as = request.headers.get("x-warbler-user")
    return await services.auth.authenticate(credentials.credentials, act_as)


Svc = Annotated[Services, Depends(get_services)]
Auth = Annotated[Principal, Depends(get_principal)]
