"""``AsyncClient``: the Warbler REST API over httpx, with safe retries for sends and reads."""

from __future__ import annotations

import asyncio
import mimetypes
import random
import uuid
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from warbler_client.errors import WarblerAPIError, WarblerConnectionError

if TYPE_CHECKING:
    from warbler_client.stream import EventStream

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_UNSET: Any = object()

JSON = dict[str, Any]


class AsyncClient:
    """One user's (or one server's) connection to Warbler.

    Authenticate with ``token`` (an access token, or call :meth:`login`) or ``api_key``
    (server-to-server; with ``act_as`` set to a user id, and the key's ``impersonate``
    scope, requests act as that user). Every method returns the decoded JSON body.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        act_as: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        backoff_max_seconds: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if base.endswith(API_PREFIX):
            base = base[: -len(API_PREFIX)]
        self.base_url = base
        self.token = token
        self.api_key = api_key
        self.act_as = act_as
        self.user_id: str | None = None
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self._http = httpx.AsyncClient(
            base_url=f"{base}{API_PREFIX}", timeout=timeout, transport=transport
        )

    # -- plumbing --------------------------------------------------------------------------

    @property
    def credential(self) -> str | None:
        """The secret sent as ``Authorization: Bearer``: the access token, else the API key."""
        return self.token or self.api_key

    def auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.credential:
            headers["Authorization"] = f"Bearer {self.credential}"
        if self.act_as:
            headers["X-Warbler-User"] = self.act_as
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        files: Any = None,
        data: Any = None,
        retry: bool = False,
        raw: bool = False,
    ) -> Any:
        """Call ``/api/v1{path}``; raise :class:`WarblerAPIError` on an error status.

        ``retry=True`` is for requests that are safe to repeat (reads, sends with a
        client_msg_id): connection failures, timeouts, 429 and 5xx are retried with capped
        exponential backoff, at most ``max_attempts`` times in all.
        """
        attempts = self.max_attempts if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, files=files, data=data,
                    headers=self.auth_headers(),
                )  # fmt: skip
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise WarblerConnectionError(f"{method} {path}: {exc!r}") from exc
                await asyncio.sleep(self._backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < attempts:
                await asyncio.sleep(self._backoff(attempt, _retry_after(response)))
                continue
            if response.is_error:
                raise _error_of(response)
            if raw:
                return response.content
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_seconds)
        delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.backoff_max_seconds)
        return delay * random.uniform(0.5, 1.0)  # jitter: retries from many clients spread out

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- auth ------------------------------------------------------------------------------

    async def login(
        self, tenant: str, username: str, password: str, device: str | None = None
    ) -> JSON:
        """Exchange a password for an access token; later calls use it."""
        body = {"tenant": tenant, "username": username, "password": password}
        if device is not None:
            body["device"] = device
        out: JSON = await self.request("POST", "/auth/login", json=body)
        self.token = out["access_token"]
        self.user_id = out["user_id"]
        return out

    async def logout(self) -> None:
        """Revoke this client's access token."""
        await self.request("POST", "/auth/logout")
        self.token = None

    async def sessions(self) -> list[JSON]:
        return await self.request("GET", "/auth/tokens", retry=True)

    async def create_api_key(self, name: str, scopes: list[str]) -> JSON:
        """Admins: a key for server-to-server use; its secret (``key``) is shown only here."""
        return await self.request("POST", "/api-keys", json={"name": name, "scopes": scopes})

    async def issue_token(self, user_id: str, device: str | None = None) -> JSON:
        """With an API key holding ``tokens:write``: an access token for one of your users."""
        return await self.request("POST", f"/users/{user_id}/tokens", json={"device": device})

    # -- users -----------------------------------------------------------------------------

    async def me(self) -> JSON:
        out: JSON = await self.request("GET", "/users/me", retry=True)
        self.user_id = out["id"]
        return out

    async def update_me(
        self, *, display_name: str = _UNSET, avatar_url: str | None = _UNSET
    ) -> JSON:
        body = _given(display_name=display_name, avatar_url=avatar_url)
        return await self.request("PATCH", "/users/me", json=body)

    async def users(
        self, q: str | None = None, *, kind: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JSON]:
        params = _params(q=q, kind=kind, limit=limit, offset=offset)
        return await self.request("GET", "/users", params=params, retry=True)

    async def user(self, user_id: str) -> JSON:
        return await self.request("GET", f"/users/{user_id}", retry=True)

    async def create_user(
        self,
        username: str,
        *,
        display_name: str | None = None,
        kind: str = "human",
        role: str | None = None,
        password: str | None = None,
        avatar_url: str | None = None,
    ) -> JSON:
        body = {"username": username, "display_name": display_name, "kind": kind, "role": role,
                "password": password, "avatar_url": avatar_url}  # fmt: skip
        return await self.request("POST", "/users", json=body)

    async def update_user(self, user_id: str, **changes: Any) -> JSON:
        """Admins: change ``display_name``, ``avatar_url``, ``role`` or ``disabled``."""
        return await self.request("PATCH", f"/users/{user_id}", json=changes)

    async def presence(self, user_ids: list[str]) -> dict[str, JSON]:
        params = [("user_ids", u) for u in user_ids]
        return await self.request("GET", "/presence", params=params, retry=True)

    # -- conversations ---------------------------------------------------------------------

    async def open_direct(self, user_id: str) -> JSON:
        """The direct conversation with ``user_id`` (created on first use)."""
        return await self.request(
            "POST", "/conversations", json={"kind": "direct", "user_id": user_id}
        )

    async def create_group(self, title: str, member_ids: list[str]) -> JSON:
        body = {"kind": "group", "title": title, "member_ids": list(member_ids)}
        return await self.request("POST", "/conversations", json=body)

    async def conversations(self, *, limit: int = 50, offset: int = 0) -> list[JSON]:
        params = {"limit": limit, "offset": offset}
        return await self.request("GET", "/conversations", params=params, retry=True)

    async def conversation(self, conversation_id: str) -> JSON:
        return await self.request("GET", f"/conversations/{conversation_id}", retry=True)

    async def update_conversation(
        self, conversation_id: str, *, title: str | None = _UNSET, announcement: str | None = _UNSET
    ) -> JSON:
        """Change only what you pass; ``None`` clears the announcement."""
        body = _given(title=title, announcement=announcement)
        return await self.request("PATCH", f"/conversations/{conversation_id}", json=body)

    async def members(self, conversation_id: str) -> list[JSON]:
        return await self.request("GET", f"/conversations/{conversation_id}/members", retry=True)

    async def add_members(self, conversation_id: str, user_ids: list[str]) -> list[JSON]:
        return await self.request(
            "POST", f"/conversations/{conversation_id}/members", json={"user_ids": list(user_ids)}
        )

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        await self.request("DELETE", f"/conversations/{conversation_id}/members/{user_id}")

    async def set_role(self, conversation_id: str, user_id: str, role: str) -> JSON:
        return await self.request(
            "PATCH", f"/conversations/{conversation_id}/members/{user_id}", json={"role": role}
        )

    async def leave(self, conversation_id: str) -> None:
        me = self.user_id or (await self.me())["id"]
        await self.remove_member(conversation_id, me)

    async def set_muted(self, conversation_id: str, muted: bool) -> JSON:
        return await self.request(
            "PUT", f"/conversations/{conversation_id}/settings", json={"muted": muted}
        )

    async def mark_read(self, conversation_id: str, seq: int) -> JSON:
        return await self.request(
            "POST", f"/conversations/{conversation_id}/read", json={"seq": seq}
        )

    async def receipts(self, conversation_id: str) -> list[JSON]:
        return await self.request("GET", f"/conversations/{conversation_id}/receipts", retry=True)

    async def typing(self, conversation_id: str, state: str = "typing") -> None:
        await self.request(
            "POST", f"/conversations/{conversation_id}/typing", json={"state": state}
        )

    # -- messages --------------------------------------------------------------------------

    async def send(
        self,
        conversation_id: str,
        text: str | None = None,
        *,
        kind: str = "text",
        data: dict[str, Any] | None = None,
        file_id: str | None = None,
        reply_to_id: str | None = None,
        mentions: list[str] | None = None,
        mention_all: bool = False,
        client_msg_id: str | None = None,
    ) -> JSON:
        """Send a message; it is stored when this returns.

        A lost connection, timeout or 5xx is retried with the same ``client_msg_id`` (a fresh
        uuid4 unless you pass one), and the server stores a message once per id, so a retry
        can never duplicate it.
        """
        body: JSON = {
            "kind": kind,
            "client_msg_id": client_msg_id or str(uuid.uuid4()),
            "mention_all": mention_all,
        }
        for key, value in (("text", text), ("data", data), ("file_id", file_id),
                           ("reply_to_id", reply_to_id), ("mentions", mentions)):  # fmt: skip
            if value is not None:
                body[key] = value
        return await self.request(
            "POST", f"/conversations/{conversation_id}/messages", json=body, retry=True
        )

    async def history(
        self,
        conversation_id: str,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> JSON:
        """``{"messages": [...ascending seq], "has_more"}``: the newest page by default."""
        params = _params(before_seq=before_seq, after_seq=after_seq, limit=limit)
        return await self.request(
            "GET", f"/conversations/{conversation_id}/messages", params=params, retry=True
        )

    async def message(self, conversation_id: str, message_id: str) -> JSON:
        return await self.request(
            "GET", f"/conversations/{conversation_id}/messages/{message_id}", retry=True
        )

    async def edit(
        self,
        conversation_id: str,
        message_id: str,
        text: str | None = None,
        *,
        data: dict[str, Any] | None = None,
    ) -> JSON:
        body = _params(text=text, data=data)
        return await self.request(
            "PATCH", f"/conversations/{conversation_id}/messages/{message_id}", json=body
        )

    async def recall(self, conversation_id: str, message_id: str) -> JSON:
        return await self.request(
            "POST", f"/conversations/{conversation_id}/messages/{message_id}/recall"
        )

    async def delete_for_me(self, conversation_id: str, message_id: str) -> None:
        await self.request("DELETE", f"/conversations/{conversation_id}/messages/{message_id}")

    async def search(
        self, q: str, conversation_id: str | None = None, *, limit: int = 20, offset: int = 0
    ) -> JSON:
        params = _params(q=q, conversation_id=conversation_id, limit=limit, offset=offset)
        return await self.request("GET", "/search", params=params, retry=True)

    # -- files -----------------------------------------------------------------------------

    async def upload(
        self,
        conversation_id: str,
        path_or_bytes: str | PathLike[str] | bytes,
        name: str | None = None,
        content_type: str | None = None,
    ) -> JSON:
        """Upload a file into a conversation; send it with ``send(..., kind="file",
        file_id=...)``."""
        if isinstance(path_or_bytes, bytes | bytearray):
            content = bytes(path_or_bytes)
            name = name or "file"
        else:
            path = Path(path_or_bytes)
            content = await asyncio.to_thread(path.read_bytes)
            name = name or path.name
        content_type = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return await self.request(
            "POST", "/files", files={"file": (name, content, content_type)},
            data={"conversation_id": conversation_id},
        )  # fmt: skip

    async def file_info(self, file_id: str) -> JSON:
        return await self.request("GET", f"/files/{file_id}", retry=True)

    async def download(self, file_id: str) -> bytes:
        return await self.request("GET", f"/files/{file_id}/content", retry=True, raw=True)

    # -- events ----------------------------------------------------------------------------

    async def poll_events(self, cursor: int | None = None, limit: int = 200) -> JSON:
        """The event log over plain HTTP: ``{"events", "cursor", "has_more"}`` after
        ``cursor``; without one, no events and the current cursor. A cursor too old answers
        410 ``gone``."""
        params = _params(cursor=cursor, limit=limit)
        return await self.request("GET", "/events", params=params, retry=True)

    def events(
        self,
        cursor: int | None = None,
        *,
        max_reconnect_seconds: float | None = None,
        include_control: bool = False,
    ) -> EventStream:
        """Live events over WebSocket, resuming from ``cursor`` across any disconnect.

        Iterate it (``async for frame in client.events()``), or ``async with`` it to connect
        before the block starts. See :class:`warbler_client.stream.EventStream`.
        """
        from warbler_client.stream import EventStream

        return EventStream(
            self, cursor, max_reconnect_seconds=max_reconnect_seconds,
            include_control=include_control,
        )  # fmt: skip

    def ws_url(self, cursor: int | None = None) -> str:
        scheme, rest = self.base_url.split("://", 1)
        ws_scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
        url = f"{ws_scheme}://{rest}{API_PREFIX}/ws"
        return url if cursor is None else f"{url}?cursor={cursor}"


def _error_of(response: httpx.Response) -> WarblerAPIError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return WarblerAPIError.from_response(response.status_code, body, response.text)


def _retry_after(response: httpx.Response) -> float | None:
    """The server's hint: the precise ``retry_after_seconds`` of a 429 body, else the
    (whole-second) Retry-After header."""
    try:
        details = response.json()["error"]["details"]
        return float(details["retry_after_seconds"])
    except (ValueError, KeyError, TypeError):
        pass
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not _UNSET}
