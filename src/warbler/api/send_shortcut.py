"""The hot path of the API, below FastAPI: ``POST /api/v1/conversations/{id}/messages``.

A send through FastAPI pays its routing, exception and exit-stack middlewares, request
objects, dependency solving and the body's field machinery: ~40 % of a batched send's CPU.
This middleware serves the common case itself — a bearer token, a JSON body the schema
accepts — with the same checks, the same service call and the same answer. Everything else
(a cookie session, another content type, a body the schema refuses) goes to the FastAPI route
with the body replayed, so every error reads exactly as the route writes it. The route stays
the documented one (OpenAPI), and ``tests/integration/test_send_shortcut.py`` compares the two
answer by answer.
"""

from __future__ import annotations

import json
import re

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from warbler.api.asgi import header
from warbler.api.errors import domain_error_response
from warbler.api.schemas import MessageIn
from warbler.errors import WarblerError
from warbler.im.append import Draft
from warbler.services import Services

_JSON_TYPES = (b"application/json", b"application/json; charset=utf-8")


class SendShortcut:
    def __init__(self, app: ASGIApp, *, prefix: str) -> None:
        self.app = app
        self._path = re.compile(rf"^{re.escape(prefix)}/conversations/([^/]+)/messages$")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        match = self._path.match(scope["path"])
        token = _bearer_token(scope) if match else None
        if match is None or token is None or not _is_json(scope):
            return await self.app(scope, receive, send)
        try:
            body = await _read_body(receive)
        except WarblerError as exc:  # the body limit (api/limits.py)
            return await domain_error_response(exc)(scope, receive, send)
        if body is None:  # the client went away
            return None
        draft = _draft(body)
        if draft is None:  # the route writes the schema's error
            return await self.app(scope, _replay(body, receive), send)
        svc: Services = scope["app"].state.services
        act_as = header(scope, b"x-warbler-user")
        try:
            principal = await svc.auth.authenticate(token, act_as)
            message, created = await svc.messages.send(principal, match.group(1), draft)
        except WarblerError as exc:
            return await domain_error_response(exc)(scope, receive, send)
        # The route's answer, byte for byte: the view already has MessageOut's shape.
        await _answer(send, 201 if created else 200, orjson.dumps(message, option=orjson.OPT_UTC_Z))
        return None


def _draft(body: bytes) -> Draft | None:
    """The draft, as the route builds it; None where the route would answer an error."""
    try:
        value = json.loads(body)  # what Starlette's request.json() does
        return Draft(**MessageIn.model_validate(value).model_dump())
    except (ValueError, ValidationError):  # json's errors are ValueErrors
        return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _answer(send: Send, status: int, body: bytes) -> None:
    raw = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _bearer_token(scope: Scope) -> str | None:
    """The token of ``Authorization: Bearer <token>``, in exactly that shape (anything else
    is the route's to judge)."""
    authorization = header(scope, b"authorization")
    if authorization is None or authorization[:7].lower() != "bearer ":
        return None
    token = authorization[7:]
    return token if token and " " not in token else None


def _is_json(scope: Scope) -> bool:
    content_type = header(scope, b"content-type")
    return content_type is not None and content_type.lower().encode() in _JSON_TYPES
