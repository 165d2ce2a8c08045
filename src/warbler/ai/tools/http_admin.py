"""HTTP tools as tenant admins manage them: create, list, change, delete. Secrets write-only."""

from __future__ import annotations

import builtins
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.tools.fields import check_header, check_name, check_roles, check_timeout
from warbler.ai.tools.http_tool import METHODS, PLACEHOLDER, auth_context, placeholders
from warbler.ai.tools.schema import check_schema
from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.crypto import SecretBox
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.security.outbound import OutboundPolicy
from warbler.store.db import Database
from warbler.store.models_tools import HttpTool

SCOPE = "bots:write"
DEFAULT_TIMEOUT = 10.0
_ORIGIN = re.compile(r"^(https?)://([^/?#]*)(.*)$", re.IGNORECASE)
_UPDATABLE = ("name", "description", "method", "url_template", "parameters", "auth_header",
              "allowed_roles", "timeout_seconds", "enabled")  # fmt: skip


def http_tool_view(row: HttpTool) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "ref": f"http:{row.name}",
        "description": row.description,
        "method": row.method,
        "url_template": row.url_template,
        "parameters": row.parameters,
        # Write-only: whether a value is set, never the value.
        "auth_header": (
            {"name": row.auth_header_name, "set": row.auth_header_value_sealed is not None}
            if row.auth_header_name
            else None
        ),
        "allowed_roles": list(row.allowed_roles),
        "timeout_seconds": row.timeout_seconds,
        "enabled": row.enabled,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class HttpToolAdmin:
    def __init__(self, db: Database, secrets: SecretBox, outbound: OutboundPolicy) -> None:
        self.db = db
        self.secrets = secrets
        self.outbound = outbound

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        method: str,
        url_template: str,
        description: str = "",
        parameters: dict[str, Any] | None = None,
        auth_header: dict[str, str] | None = None,
        allowed_roles: builtins.list[str] | None = None,
        timeout_seconds: float | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        now = utcnow()
        row = HttpTool(
            id=new_id(), tenant_id=principal.tenant_id, name=check_name(name),
            description=description.strip(), method=_check_method(method),
            url_template=await self._check_url(url_template),
            parameters=check_schema(parameters), allowed_roles=check_roles(allowed_roles),
            timeout_seconds=check_timeout(timeout_seconds, DEFAULT_TIMEOUT), enabled=enabled,
            created_by=principal.user_id or principal.api_key_id, created_at=now, updated_at=now,
        )  # fmt: skip
        _check_placeholders(row.url_template, row.parameters)
        await ensure_keys(principal.tenant_id)  # the secret is sealed under the tenant's key
        with bound_tenant(principal.tenant_id):
            self._set_auth(row, auth_header)
        try:
            async with self.db.write() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict("an HTTP tool with this name exists", details={"name": name}) from exc
        return http_tool_view(row)

    async def list(self, principal: Principal) -> builtins.list[dict[str, Any]]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            rows = await s.scalars(
                select(HttpTool)
                .where(HttpTool.tenant_id == principal.tenant_id)
                .order_by(HttpTool.name)
            )
            return [http_tool_view(r) for r in rows]

    async def get(self, principal: Principal, tool_id: str) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            return http_tool_view(await _load(s, principal.tenant_id, tool_id))

    async def update(
        self, principal: Principal, tool_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change any field (absent keys stay). ``auth_header: null`` removes the header."""
        principal.require_admin(SCOPE)
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
        for field in ("name", "method", "url_template", "enabled", "allowed_roles"):
            if field in changes and changes[field] is None:
                raise InvalidRequest(f"{field} cannot be null", details={"field": field})
        if "url_template" in changes:
            changes["url_template"] = await self._check_url(changes["url_template"])
        try:
            async with self.db.write() as s:
                row = await _load(s, principal.tenant_id, tool_id, for_update=True)
                if "name" in changes:
                    row.name = check_name(changes["name"])
                if "description" in changes:
                    row.description = (changes["description"] or "").strip()
                if "method" in changes:
                    row.method = _check_method(changes["method"])
                if "url_template" in changes:
                    row.url_template = changes["url_template"]
                if "parameters" in changes:
                    row.parameters = check_schema(changes["parameters"])
                if "allowed_roles" in changes:
                    row.allowed_roles = check_roles(changes["allowed_roles"])
                if "timeout_seconds" in changes:
                    row.timeout_seconds = check_timeout(changes["timeout_seconds"], DEFAULT_TIMEOUT)
                if "enabled" in changes:
                    row.enabled = bool(changes["enabled"])
                if "auth_header" in changes:
                    await ensure_keys(principal.tenant_id)
                    with bound_tenant(principal.tenant_id):
                        self._set_auth(row, changes["auth_header"])
                _check_placeholders(row.url_template, row.parameters)
                row.updated_at = utcnow()
                await s.flush()
        except IntegrityError as exc:
            raise Conflict("an HTTP tool with this name exists") from exc
        return http_tool_view(row)

    async def delete(self, principal: Principal, tool_id: str) -> None:
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            await s.delete(await _load(s, principal.tenant_id, tool_id, for_update=True))

    def _set_auth(self, row: HttpTool, auth_header: dict[str, str] | None) -> None:
        if not auth_header:
            row.auth_header_name = row.auth_header_value_sealed = None
            return
        name, value = auth_header.get("name", ""), auth_header.get("value", "")
        check_header(name, value, field="auth_header")
        row.auth_header_name = name
        row.auth_header_value_sealed = self.secrets.seal(value, auth_context(row.id))

    async def _check_url(self, template: str) -> str:
        """Placeholders only after the host; the host itself must pass the outbound policy
        now (it is checked again on every call: DNS and the operator's settings change)."""
        found = _ORIGIN.match(template.strip())
        if not found:
            raise InvalidRequest("url_template must start with http:// or https://",
                                 details={"field": "url_template"})  # fmt: skip
        if "{" in found.group(2) or "}" in found.group(2):
            raise InvalidRequest("placeholders may appear only in the path and query",
                                 details={"field": "url_template"})  # fmt: skip
        sample = PLACEHOLDER.sub("x", template.strip())
        if "{" in sample or "}" in sample:
            raise InvalidRequest("a placeholder is {name}: letters, digits and _",
                                 details={"field": "url_template"})  # fmt: skip
        await self.outbound.check(sample)
        return template.strip()


def _check_method(method: str) -> str:
    method = (method or "").upper()
    if method not in METHODS:
        raise InvalidRequest(f"method is one of {', '.join(METHODS)}", details={"field": "method"})
    return method


def _check_placeholders(template: str, schema: dict[str, Any]) -> None:
    """Every {placeholder} must be a required argument, or the URL could not be built."""
    required = set(schema.get("required") or [])
    props = set((schema.get("properties") or {}).keys())
    missing = [p for p in placeholders(template) if p not in props or p not in required]
    if missing:
        raise InvalidRequest(
            f"URL placeholders must be required arguments in parameters: {', '.join(missing)}",
            details={"field": "parameters", "placeholders": missing},
        )


async def _load(
    s: AsyncSession, tenant_id: str, tool_id: str, *, for_update: bool = False
) -> HttpTool:
    query = select(HttpTool).where(HttpTool.id == tool_id, HttpTool.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    row = await s.scalar(query)
    if row is None:
        raise NotFound("no such HTTP tool", details={"tool_id": tool_id})
    return row
