"""A tenant's LLM providers: create, list, change, delete; the API key is sealed and write-only.

The key is sealed with ``services.secrets`` under the context ``ai_provider:<id>:api_key``, so
a sealed value copied to another row does not open there. No view ever holds it: an admin
sees ``{"set": true, "last4": "abcd"}`` (``last4`` only for keys of 16 characters or more).
A provider that bots use cannot be deleted (``Conflict`` naming those bots): a bot silently
losing its model would fall back to extractive answers with nobody having decided so.
"""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.providers.config import PROVIDER_KINDS, ProviderConfig
from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.crypto import SecretBox, SecretError
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.db import Database
from warbler.store.models_ai import AiBot, AiProvider

log = logging.getLogger(__name__)

SCOPE = "bots:write"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
LAST4_MIN_KEY_CHARS = 16
# Credentials go in ``api_key`` (sealed), never in the plain ``headers``.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-auth-token"}
)
_FIELDS = (
    "name", "kind", "base_url", "model", "headers", "extra_body", "stream",
    "price_prompt", "price_completion", "timeout_seconds", "idle_timeout_seconds", "max_retries",
)  # fmt: skip


def key_context(provider_id: str) -> str:
    return f"ai_provider:{provider_id}:api_key"


def provider_view(row: AiProvider) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "base_url": row.base_url,
        "model": row.model,
        "headers": dict(row.headers or {}),
        "extra_body": dict(row.extra_body or {}),
        "stream": row.stream,
        "price_prompt": row.price_prompt,
        "price_completion": row.price_completion,
        "timeout_seconds": row.timeout_seconds,
        "idle_timeout_seconds": row.idle_timeout_seconds,
        "max_retries": row.max_retries,
        "api_key": {"set": row.api_key_sealed is not None, "last4": row.api_key_last4},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def check_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields present in ``changes`` (a create or a partial update)."""
    out = dict(changes)
    if "name" in out and not NAME.match(out["name"] or ""):
        raise InvalidRequest(
            "a provider name is 1-64 of A-Z a-z 0-9 _ . - and starts with a letter or digit",
            details={"field": "name"},
        )
    if "kind" in out and out["kind"] not in PROVIDER_KINDS:
        raise InvalidRequest(
            f"kind must be one of {', '.join(PROVIDER_KINDS)}",
            details={"field": "kind", "allowed": list(PROVIDER_KINDS)},
        )
    if "base_url" in out:
        out["base_url"] = check_base_url(out["base_url"] or "")
    if "headers" in out:
        headers = out["headers"] or {}
        secret = sorted(h for h in headers if h.lower() in SECRET_HEADERS)
        if secret:
            raise InvalidRequest(
                "put credentials in api_key (sealed at rest), not in headers (stored in clear)",
                details={"field": "headers", "refused": secret},
            )
        out["headers"] = {str(k): str(v) for k, v in headers.items()}
    for price in ("price_prompt", "price_completion"):
        if price in out and (out[price] is None or out[price] < 0):
            raise InvalidRequest(f"{price} is a price per 1M tokens, 0 or more",
                                 details={"field": price})  # fmt: skip
    for timeout in ("timeout_seconds", "idle_timeout_seconds"):
        if out.get(timeout) is not None and out[timeout] <= 0:
            raise InvalidRequest(f"{timeout} must be positive", details={"field": timeout})
    if out.get("max_retries") is not None and not 0 <= out["max_retries"] <= 10:
        raise InvalidRequest("max_retries is 0 to 10", details={"field": "max_retries"})
    if "stream" in out and not isinstance(out["stream"], bool):
        raise InvalidRequest("stream is true or false", details={"field": "stream"})
    if "extra_body" in out:
        out["extra_body"] = dict(out["extra_body"] or {})
    if "model" in out:
        out["model"] = out["model"] or ""
    return out


def check_base_url(url: str) -> str:
    """Empty (the vendor's public endpoint) or an http(s) URL with a host."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(
            "base_url must be an http:// or https:// URL", details={"field": "base_url"}
        )
    return url.rstrip("/")


class ProviderConfigService:
    def __init__(self, db: Database, secrets: SecretBox) -> None:
        self.db = db
        self.secrets = secrets

    # -- admin CRUD ------------------------------------------------------------------------

    async def create(
        self, principal: Principal, fields: dict[str, Any], api_key: str | None = None
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        values = check_fields({k: v for k, v in fields.items() if k in _FIELDS})
        for needed in ("name", "kind"):
            if needed not in values:
                raise InvalidRequest(f"{needed} is required", details={"field": needed})
        now = utcnow()
        row = AiProvider(id=new_id(), tenant_id=principal.tenant_id, base_url="", model="",
                         headers={}, extra_body={}, stream=True, price_prompt=0.0, price_completion=0.0,
                         created_at=now, updated_at=now)  # fmt: skip
        for name, value in values.items():
            setattr(row, name, value)
        await ensure_keys(principal.tenant_id)  # the key is sealed under the tenant's key
        with bound_tenant(principal.tenant_id):
            self._set_key(row, api_key)
        try:
            async with self.db.write() as s:
                s.add(row)
        except IntegrityError as exc:
            raise _name_taken(values["name"]) from exc
        return provider_view(row)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            rows = await s.scalars(
                select(AiProvider)
                .where(AiProvider.tenant_id == principal.tenant_id)
                .order_by(AiProvider.name)
            )
            return [provider_view(r) for r in rows]

    async def get(self, principal: Principal, provider_id: str) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            return provider_view(await _load(s, principal.tenant_id, provider_id))

    async def update(
        self, principal: Principal, provider_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change fields; ``api_key`` in ``changes`` replaces the key (``None``/"" clears it)."""
        principal.require_admin(SCOPE)
        values = check_fields({k: v for k, v in changes.items() if k in _FIELDS})
        for needed in ("name", "kind"):
            if needed in values and values[needed] is None:
                raise InvalidRequest(f"{needed} cannot be cleared", details={"field": needed})
        try:
            async with self.db.write() as s:
                row = await _load(s, principal.tenant_id, provider_id)
                for name, value in values.items():
                    setattr(row, name, value)
                if "api_key" in changes:
                    await ensure_keys(principal.tenant_id)
                    with bound_tenant(principal.tenant_id):
                        self._set_key(row, changes["api_key"])
                row.updated_at = utcnow()
        except IntegrityError as exc:
            raise _name_taken(values.get("name", "")) from exc
        return provider_view(row)

    async def delete(self, principal: Principal, provider_id: str) -> None:
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            row = await _load(s, principal.tenant_id, provider_id)
            bots = await s.execute(
                select(AiBot.id, AiBot.name, AiBot.provider_ids).where(
                    AiBot.tenant_id == principal.tenant_id
                )
            )
            users = [{"id": b, "name": n} for b, n, ids in bots if provider_id in (ids or [])]
            if users:
                raise Conflict(
                    "bots use this provider: remove it from them first",
                    details={"provider_id": provider_id, "bots": users},
                )
            await s.delete(row)

    # -- for the reply engine --------------------------------------------------------------

    def build_config(self, row: AiProvider) -> ProviderConfig:
        """The provider as the reply engine uses it, its key opened (in memory only)."""
        api_key = ""
        if row.api_key_sealed is not None:
            api_key = self.secrets.open(row.api_key_sealed, key_context(row.id))
        return ProviderConfig(
            kind=row.kind,  # type: ignore[arg-type]  # checked on the way in
            name=row.name,
            base_url=row.base_url,
            api_key=api_key,
            model=row.model,
            headers=dict(row.headers or {}),
            extra_body=dict(row.extra_body or {}),
            stream=row.stream,
            timeout_seconds=row.timeout_seconds,
            idle_timeout_seconds=row.idle_timeout_seconds,
            max_retries=row.max_retries,
            price_prompt=row.price_prompt,
            price_completion=row.price_completion,
        )

    async def configs(
        self, s: AsyncSession, tenant_id: str, provider_ids: Sequence[str]
    ) -> builtins.list[ProviderConfig]:
        """The tenant's providers among ``provider_ids``, in that order. One whose key no longer
        opens (the master key changed) is left out with an error logged: the chain goes on."""
        if not provider_ids:
            return []
        await ensure_keys(tenant_id)  # the keys are sealed under the tenant's data key
        rows = await s.scalars(
            select(AiProvider).where(
                AiProvider.tenant_id == tenant_id, AiProvider.id.in_(list(provider_ids))
            )
        )
        by_id = {r.id: r for r in rows}
        out: builtins.list[ProviderConfig] = []
        for pid in provider_ids:
            row = by_id.get(pid)
            if row is None:
                continue
            try:
                out.append(self.build_config(row))
            except SecretError:
                log.error("the API key of provider %s (%s) does not open with this node's "
                          "secret key; skipping it", row.id, row.name)  # fmt: skip
        return out

    async def existing_ids(self, s: AsyncSession, tenant_id: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = await s.scalars(
            select(AiProvider.id).where(
                AiProvider.tenant_id == tenant_id, AiProvider.id.in_(list(ids))
            )
        )
        return set(rows.all())

    def _set_key(self, row: AiProvider, api_key: str | None) -> None:
        api_key = (api_key or "").strip()
        if not api_key:
            row.api_key_sealed = None
            row.api_key_last4 = None
            return
        row.api_key_sealed = self.secrets.seal(api_key, key_context(row.id))
        row.api_key_last4 = api_key[-4:] if len(api_key) >= LAST4_MIN_KEY_CHARS else None


async def _load(s: AsyncSession, tenant_id: str, provider_id: str) -> AiProvider:
    row = await s.scalar(
        select(AiProvider).where(AiProvider.tenant_id == tenant_id, AiProvider.id == provider_id)
    )
    if row is None:
        raise NotFound("no such provider", details={"provider_id": provider_id})
    return row


def _name_taken(name: str) -> Conflict:
    return Conflict("a provider with this name exists", details={"field": "name", "name": name})
