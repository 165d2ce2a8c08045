"""A short-lived cache of resolved access tokens, so a request does not read the database
just to learn who sent it.

An entry lives ``ttl`` seconds (``WARBLER_AUTH_CACHE_SECONDS``, default 1; 0 turns the cache
off) and never past the token's own expiry. Any change this process commits to users, access
tokens or API keys — a revocation, a password change, a disabled user, a role change, an
erasure — clears every cache in the process at once, so on the node that made the change it
takes effect on the next request. Another node notices within ``ttl`` seconds.
"""

from __future__ import annotations

import time
import weakref
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from warbler.im.principal import Principal

WATCHED_TABLES = frozenset({"users", "access_tokens", "api_keys"})
_CHANGED = "warbler.auth_changed"
# An execution option marking a statement that only refreshes ``last_used_at``.
TOUCH = "warbler_auth_touch"
_CACHES: weakref.WeakSet[PrincipalCache] = weakref.WeakSet()


class PrincipalCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 50_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, datetime, float]] = {}
        # Bumped by every clear: a lookup that began before a change must not store what it
        # read once the change has committed.
        self.generation = 0
        _CACHES.add(self)

    def get(self, token_hash: str, now: datetime) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        principal, expires_at, stored = entry
        if time.monotonic() - stored >= self.ttl or now >= expires_at:
            del self._entries[token_hash]
            return None
        return principal

    def put(
        self, token_hash: str, principal: Principal, expires_at: datetime, generation: int
    ) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # cheaper than LRU bookkeeping on every request
        self._entries[token_hash] = (principal, expires_at, time.monotonic())

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1


def _clear_all() -> None:
    for cache in list(_CACHES):
        cache.clear()


@event.listens_for(Session, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    if (state.is_update or state.is_delete) and not state.execution_options.get(TOUCH):
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in WATCHED_TABLES:
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "before_flush")
def _on_flush(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if getattr(obj, "__tablename__", None) in WATCHED_TABLES:
            session.info[_CHANGED] = True
            return


@event.listens_for(Session, "after_commit")
def _on_commit(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        _clear_all()


@event.listens_for(Session, "after_rollback")
def _on_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
