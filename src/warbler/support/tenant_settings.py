"""A tenant's customer-service settings: the support bot, the widget, the escalation rules.

One ``support_settings`` row per tenant, created on first use with a fresh public widget id.
The row also serves as the tenant's queue lock (``assignment.lock_queue``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.audit import AuditLog
from warbler.security.crypto import SecretBox
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_ai import AiBot
from warbler.store.models_support import SupportSettings, SupportTeam
from warbler.support.views import settings_view

MAX_WORDS = 200  # escalate_keywords, negative_words
MAX_WORD_CHARS = 100
MAX_ORIGINS = 50
MIN_SECRET_CHARS = 16
EDITABLE = (
    "bot_user_id", "default_team_id", "escalate_keywords", "negative_words",
    "escalate_on_no_answer", "widget_title", "widget_greeting", "widget_color",
    "allowed_origins", "identity_secret", "identity_required",
)  # fmt: skip


def secret_context(tenant_id: str) -> str:
    return f"support:{tenant_id}:identity"


async def load(s: AsyncSession, tenant_id: str) -> SupportSettings | None:
    return await s.scalar(select(SupportSettings).where(SupportSettings.tenant_id == tenant_id))


class TenantSettings:
    def __init__(self, db: Database, secrets: SecretBox, audit: AuditLog) -> None:
        self.db = db
        self.secrets = secrets
        self.audit = audit

    async def ensure(self, tenant_id: str, *, widget_id: str | None = None) -> dict[str, Any]:
        """The tenant's settings, created (with ``widget_id`` or a new one) when missing."""
        async with self.db.read() as s:
            row = await load(s, tenant_id)
        if row is not None:
            return settings_view(row)
        now = utcnow()
        try:
            async with self.db.write() as s:
                row = await load(s, tenant_id)
                if row is None:
                    row = SupportSettings(
                        tenant_id=tenant_id, widget_id=widget_id or new_id().lower(),
                        escalate_keywords=[], negative_words=[], escalate_on_no_answer=True,
                        widget_title={}, widget_greeting={}, widget_color="#2563eb",
                        allowed_origins=[], identity_required=False, created_at=now,
                        updated_at=now,
                    )  # fmt: skip
                    s.add(row)
        except IntegrityError as exc:  # a concurrent first use, or the widget id is taken
            async with self.db.read() as s:
                row = await load(s, tenant_id)
            if row is None:
                raise Conflict("that widget id is taken", details={"widget_id": widget_id}) from exc
        return settings_view(row)

    async def get(self, principal: Principal) -> dict[str, Any]:
        principal.require_admin("support:admin")
        return await self.ensure(principal.tenant_id)

    async def by_widget(self, widget_id: str) -> dict[str, Any] | None:
        """The settings whose public widget id this is (with ``tenant_id``), or None."""
        async with self.db.read() as s:
            row = await s.scalar(
                select(SupportSettings).where(SupportSettings.widget_id == widget_id)
            )
        return settings_view(row) if row is not None else None

    async def identity_secret(self, tenant_id: str) -> str | None:
        """The HMAC key visitors' identity tokens are signed with (unsealed), or None."""
        async with self.db.read() as s:
            row = await load(s, tenant_id)
        if row is None or row.identity_secret_sealed is None:
            return None
        return self.secrets.open(row.identity_secret_sealed, secret_context(tenant_id))

    async def update(self, principal: Principal, changes: dict[str, Any]) -> dict[str, Any]:
        principal.require_admin("support:admin")
        unknown = set(changes) - set(EDITABLE)
        if unknown:
            raise InvalidRequest(f"unknown settings: {', '.join(sorted(unknown))}")
        tenant_id = principal.tenant_id
        await self.ensure(tenant_id)
        async with self.db.write() as s:
            row = await load(s, tenant_id)
            assert row is not None
            if "bot_user_id" in changes:
                row.bot_user_id = await _check_bot(s, tenant_id, changes["bot_user_id"])
            if "default_team_id" in changes:
                row.default_team_id = await _check_team(s, tenant_id, changes["default_team_id"])
            for name in ("escalate_keywords", "negative_words"):
                if name in changes:
                    setattr(row, name, _words(name, changes[name]))
            if "allowed_origins" in changes:
                row.allowed_origins = _origins(changes["allowed_origins"])
            for name in ("widget_title", "widget_greeting"):
                if name in changes:
                    setattr(row, name, _localized(name, changes[name]))
            if "widget_color" in changes:
                row.widget_color = str(changes["widget_color"])
            for name in ("escalate_on_no_answer", "identity_required"):
                if name in changes:
                    setattr(row, name, bool(changes[name]))
            if "identity_secret" in changes:
                secret = changes["identity_secret"]
                if secret is None or secret == "":
                    row.identity_secret_sealed = None
                elif len(str(secret)) < MIN_SECRET_CHARS:
                    raise InvalidRequest(
                        f"identity_secret needs at least {MIN_SECRET_CHARS} characters",
                        details={"field": "identity_secret"},
                    )
                else:
                    row.identity_secret_sealed = self.secrets.seal(
                        str(secret), secret_context(tenant_id)
                    )
            if row.identity_required and row.identity_secret_sealed is None:
                raise InvalidRequest(
                    "identity_required needs an identity_secret",
                    details={"field": "identity_required"},
                )
            row.updated_at = utcnow()
            await self.audit.record_in(
                s, tenant_id=tenant_id, actor=principal, action="support.settings_changed",
                target_type="support_settings", target_id=tenant_id,
                data={"changed": sorted(changes)},
            )  # fmt: skip
            view = settings_view(row)
        return view


async def _check_bot(s: AsyncSession, tenant_id: str, user_id: Any) -> str | None:
    if user_id is None:
        return None
    found = await s.scalar(
        select(AiBot.user_id)
        .join(User, User.id == AiBot.user_id)
        .where(AiBot.tenant_id == tenant_id, AiBot.user_id == str(user_id))
    )
    if found is None:
        raise NotFound(
            "bot_user_id must be the user id of one of the tenant's bots",
            details={"bot_user_id": user_id},
        )
    return str(found)


async def _check_team(s: AsyncSession, tenant_id: str, team_id: Any) -> str | None:
    if team_id is None:
        return None
    found = await s.scalar(
        select(SupportTeam.id).where(
            SupportTeam.tenant_id == tenant_id, SupportTeam.id == str(team_id)
        )
    )
    if found is None:
        raise NotFound("no such team", details={"team_id": team_id})
    return str(found)


def _words(name: str, values: Any) -> list[str]:
    if not isinstance(values, list) or len(values) > MAX_WORDS:
        raise InvalidRequest(
            f"{name} is a list of at most {MAX_WORDS} words", details={"field": name}
        )
    out = []
    for value in values:
        word = str(value).strip()
        if not word or len(word) > MAX_WORD_CHARS:
            raise InvalidRequest(
                f"each of {name} is 1 to {MAX_WORD_CHARS} characters", details={"field": name}
            )
        out.append(word)
    return list(dict.fromkeys(out))


def _origins(values: Any) -> list[str]:
    if not isinstance(values, list) or len(values) > MAX_ORIGINS:
        raise InvalidRequest(
            f"allowed_origins is a list of at most {MAX_ORIGINS} origins",
            details={"field": "allowed_origins"},
        )
    out = []
    for value in values:
        origin = str(value).strip().rstrip("/")
        if not origin.startswith(("https://", "http://")) or len(origin) > 300:
            raise InvalidRequest(
                "an allowed origin looks like https://www.example.com",
                details={"field": "allowed_origins", "origin": value},
            )
        out.append(origin)
    return out


def _localized(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not set(value) <= {"en", "zh"}:
        raise InvalidRequest(f'{name} is {{"en": ..., "zh": ...}}', details={"field": name})
    return {k: str(v)[:500] for k, v in value.items() if v is not None}
