"""``Client``: the blocking SDK, for scripts and threads; one event loop in a background thread
runs an :class:`AsyncClient`, and every method waits for its result."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterator
from os import PathLike
from typing import Any, TypeVar

from warbler_client.client import AsyncClient
from warbler_client.stream import EventStream

T = TypeVar("T")
JSON = dict[str, Any]


class _Loop:
    """An event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="warbler-client", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if not self.thread.is_alive():
            coro.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout}s") from None

    def stop(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
        self.loop.close()


class Client:
    """The same API as :class:`AsyncClient`, blocking. ``close()`` (or ``with``) stops the
    background thread."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        act_as: str | None = None,
        timeout: float = 10.0,
        **options: Any,
    ) -> None:
        self._loop = _Loop()

        async def make() -> AsyncClient:
            return AsyncClient(
                base_url, token=token, api_key=api_key, act_as=act_as, timeout=timeout, **options
            )

        self.aio = self._loop.run(make())
        self._streams: list[SyncEventStream] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run(coro)

    @property
    def token(self) -> str | None:
        return self.aio.token

    @property
    def user_id(self) -> str | None:
        return self.aio.user_id

    def close(self) -> None:
        for stream in self._streams:
            stream.close()
        if self._loop.thread.is_alive():
            self._run(self.aio.aclose())
        self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- auth and users --------------------------------------------------------------------

    def login(self, tenant: str, username: str, password: str, device: str | None = None) -> JSON:
        return self._run(self.aio.login(tenant, username, password, device))

    def logout(self) -> None:
        self._run(self.aio.logout())

    def create_api_key(self, name: str, scopes: list[str]) -> JSON:
        return self._run(self.aio.create_api_key(name, scopes))

    def issue_token(self, user_id: str, device: str | None = None) -> JSON:
        return self._run(self.aio.issue_token(user_id, device))

    def me(self) -> JSON:
        return self._run(self.aio.me())

    def users(self, q: str | None = None, **options: Any) -> list[JSON]:
        return self._run(self.aio.users(q, **options))

    def user(self, user_id: str) -> JSON:
        return self._run(self.aio.user(user_id))

    def create_user(self, username: str, **options: Any) -> JSON:
        return self._run(self.aio.create_user(username, **options))

    def presence(self, user_ids: list[str]) -> dict[str, JSON]:
        return self._run(self.aio.presence(user_ids))

    # -- conversations ---------------------------------------------------------------------

    def open_direct(self, user_id: str) -> JSON:
        return self._run(self.aio.open_direct(user_id))

    def create_group(self, title: str, member_ids: list[str]) -> JSON:
        return self._run(self.aio.create_group(title, member_ids))

    def conversations(self, **options: Any) -> list[JSON]:
        return self._run(self.aio.conversations(**options))

    def conversation(self, conversation_id: str) -> JSON:
        return self._run(self.aio.conversation(conversation_id))

    def update_conversation(self, conversation_id: str, **changes: Any) -> JSON:
        return self._run(self.aio.update_conversation(conversation_id, **changes))

    def members(self, conversation_id: str) -> list[JSON]:
        return self._run(self.aio.members(conversation_id))

    def add_members(self, conversation_id: str, user_ids: list[str]) -> list[JSON]:
        return self._run(self.aio.add_members(conversation_id, user_ids))

    def remove_member(self, conversation_id: str, user_id: str) -> None:
        self._run(self.aio.remove_member(conversation_id, user_id))

    def leave(self, conversation_id: str) -> None:
        self._run(self.aio.leave(conversation_id))

    def set_muted(self, conversation_id: str, muted: bool) -> JSON:
        return self._run(self.aio.set_muted(conversation_id, muted))

    def mark_read(self, conversation_id: str, seq: int) -> JSON:
        return self._run(self.aio.mark_read(conversation_id, seq))

    def receipts(self, conversation_id: str) -> list[JSON]:
        return self._run(self.aio.receipts(conversation_id))

    def typing(self, conversation_id: str, state: str = "typing") -> None:
        self._run(self.aio.typing(conversation_id, state))

    # -- messages and files ----------------------------------------------------------------

    def send(self, conversation_id: str, text: str | None = None, **options: Any) -> JSON:
        return self._run(self.aio.send(conversation_id, text, **options))

    def history(self, conversation_id: str, **options: Any) -> JSON:
        return self._run(self.aio.history(conversation_id, **options))

    def message(self, conversation_id: str, message_id: str) -> JSON:
        return self._run(self.aio.message(conversation_id, message_id))

    def edit(
        self, conversation_id: str, message_id: str, text: str | None = None, **options: Any
    ) -> JSON:
        return self._run(self.aio.edit(conversation_id, message_id, text, **options))

    def recall(self, conversation_id: str, message_id: str) -> JSON:
        return self._run(self.aio.recall(conversation_id, message_id))

    def delete_for_me(self, conversation_id: str, message_id: str) -> None:
        self._run(self.aio.delete_for_me(conversation_id, message_id))

    def search(self, q: str, conversation_id: str | None = None, **options: Any) -> JSON:
        return self._run(self.aio.search(q, conversation_id, **options))

    def upload(
        self, conversation_id: str, path_or_bytes: str | PathLike[str] | bytes, **options: Any
    ) -> JSON:
        return self._run(self.aio.upload(conversation_id, path_or_bytes, **options))

    def file_info(self, file_id: str) -> JSON:
        return self._run(self.aio.file_info(file_id))

    def download(self, file_id: str) -> bytes:
        return self._run(self.aio.download(file_id))

    def poll_events(self, cursor: int | None = None, limit: int = 200) -> JSON:
        return self._run(self.aio.poll_events(cursor, limit))

    # -- live events -----------------------------------------------------------------------

    def events(
        self, cursor: int | None = None, *, timeout: float | None = None, **options: Any
    ) -> SyncEventStream:
        """A blocking iterator over live events; ``timeout`` bounds each wait (then
        ``TimeoutError``). The stream connects at once, so nothing sent after this returns
        is missed."""
        stream = SyncEventStream(self._loop, self.aio.events(cursor, **options), timeout)
        self._streams.append(stream)
        return stream


class SyncEventStream:
    """Blocking view of an :class:`EventStream`; ``next(timeout=…)`` waits at most that long."""

    def __init__(self, loop: _Loop, stream: EventStream, timeout: float | None) -> None:
        self._loop = loop
        self.stream = stream
        self.timeout = timeout
        self._loop.run(stream.connect())

    @property
    def cursor(self) -> int | None:
        return self.stream.cursor

    def next(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame; ``TimeoutError`` after ``timeout`` seconds (the stream stays
        usable), ``StopIteration`` once closed."""
        try:
            return self._loop.run(self.stream.__anext__(), timeout or self.timeout)
        except StopAsyncIteration:
            raise StopIteration from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        return self.next()

    def send_typing(self, conversation_id: str, state: str = "typing") -> None:
        self._loop.run(self.stream.send_typing(conversation_id, state))

    def close(self) -> None:
        if self._loop.thread.is_alive():
            self._loop.run(self.stream.close())

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
