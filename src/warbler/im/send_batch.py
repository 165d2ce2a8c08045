"""Group commit for sends: every send that arrives while a batch is being stored waits for
the next batch, and a batch is stored in one transaction.

One sender at a time sees no difference (a batch of one). Many concurrent senders share the
transaction's fixed costs — the write lock, the sequence updates, the statement round trips,
the commit — instead of queueing for the lock one by one. Durability is unchanged: a sender
is answered only after the commit that holds its message.

A batch is one tenant's sends (encryption is bound to one tenant per transaction). Checks
that concern one send (membership, references, idempotency) fail that send alone; anything
that fails the batch's transaction itself is retried send by send, each in its own
transaction, so one bad send never costs another sender its message or its error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from warbler.im.append import Draft
from warbler.im.principal import Principal
from warbler.security.encryption import tenant_scope

log = logging.getLogger(__name__)

Sent = tuple[dict[str, Any], bool]  # (message view, created)


@dataclass(slots=True)
class PendingSend:
    principal: Principal
    conversation_id: str
    draft: Draft
    future: asyncio.Future[Sent]

    @property
    def sender_id(self) -> str:
        assert self.principal.user_id is not None
        return self.principal.user_id


# Stores a batch in one transaction; returns, per send, its result or the error that is
# that send's alone. Raising means the transaction failed as a whole.
StoreMany = Callable[[list[PendingSend]], Awaitable[list[Sent | BaseException]]]
# Stores one send in its own transaction (the retry path).
StoreOne = Callable[[PendingSend], Awaitable[Sent]]


class SendBatcher:
    def __init__(self, store_many: StoreMany, store_one: StoreOne, max_batch: int = 256) -> None:
        self._store_many = store_many
        self._store_one = store_one
        self.max_batch = max_batch
        self._pending: list[PendingSend] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0  # read by tests and metrics
        self.batched_sends = 0

    async def submit(self, principal: Principal, conversation_id: str, draft: Draft) -> Sent:
        future: asyncio.Future[Sent] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # an abandoned send's error is not "unretrieved"
        self._pending.append(PendingSend(principal, conversation_id, draft, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        # The batch is stored whether or not this caller is still waiting: cancelling the
        # wait cancels only the future (``_settle`` skips it), not the send (a client that
        # went away gets its message on a retry with the same client_msg_id).
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                taken, self._pending = self._pending, []
                for batch in _by_tenant(taken, self.max_batch):
                    await self._store(batch)
        finally:
            self._drainer = None

    async def _store(self, batch: list[PendingSend]) -> None:
        tenant_id = batch[0].principal.tenant_id
        try:
            async with tenant_scope(tenant_id):
                results = await self._store_many(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            log.info("a batch of %d sends failed (%s); storing them one by one", len(batch), exc)
            for item in batch:
                try:
                    async with tenant_scope(tenant_id):
                        _settle(item, await self._store_one(item))
                except Exception as one:
                    _settle(item, one)
            return
        self.batches += 1
        self.batched_sends += len(batch)
        for item, result in zip(batch, results, strict=True):
            _settle(item, result)


def _by_tenant(items: list[PendingSend], limit: int) -> list[list[PendingSend]]:
    groups: dict[str, list[list[PendingSend]]] = {}
    order: list[list[PendingSend]] = []
    for item in items:
        chunks = groups.setdefault(item.principal.tenant_id, [])
        if not chunks or len(chunks[-1]) >= limit:
            chunks.append([])
            order.append(chunks[-1])
        chunks[-1].append(item)
    return order


def _retrieve(future: asyncio.Future[Sent]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(item: PendingSend, result: Sent | BaseException) -> None:
    if item.future.done():
        return
    if isinstance(result, BaseException):
        item.future.set_exception(result)
    else:
        item.future.set_result(result)
