"""Bots: a tenant's AI assistants, each a user of its own; configuration, checks, loading.

A bot is two rows: its configuration (``ai_bots``) and its user (``users``, kind "bot"), which
is how it joins conversations and sends replies. The user's display name and avatar follow the
bot's. Deleting a bot deletes its configuration and disables its user (its past messages keep
their sender). Every tenant user may list bots (name, description, avatar); the configuration
(persona, providers, quotas, ...) is for tenant admins and API keys with ``bots:write``.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.bot_config import BotConfig, Preset, Quotas
from warbler.ai.provider_configs import ProviderConfigService
from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.im.users import UserService
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_ai import AiBot, AiConversationState
from warbler.store.models_kb import KnowledgeBase

SCOPE = "bots:write"
# Preset names are typed after /preset: letters (Chinese too), digits, _ and -.
PRESET_NAME = re.compile(r"^[\w\-]{1,64}$")
# kb_search, http:weather, mcp:files, mcp:files:read (see ai/tools/base.py ``Tool.ref``).
TOOL_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}(?::[A-Za-z0-9_.\-*]{1,128}){0,2}$")
DM_POLICIES = ("always", "never")
GROUP_POLICIES = ("mention", "always", "never")
CONTEXT_TOKENS = (500, 200_000)
TEMPERATURE = (0.0, 2.0)
MAX_TOKENS = (1, 200_000)
LIST_LIMITS = {"presets": 20, "provider_ids": 5, "kb_ids": 20, "tools": 50}
QUOTA_KEYS = ("messages_per_minute", "user_messages_per_minute", "tokens_per_month")
PRESET_KEYS = ("name", "persona", "model", "temperature", "max_tokens")
CONFIG_FIELDS = (
    "name", "description", "avatar_url", "persona", "presets", "provider_ids", "model",
    "temperature", "max_tokens", "context_tokens", "kb_ids", "tools", "dm_policy",
    "group_policy", "quotas", "enabled",
)  # fmt: skip
_DEFAULTS: dict[str, Any] = {
    "description": "", "avatar_url": None, "persona": "", "presets": [], "provider_ids": [],
    "model": None, "temperature": None, "max_tokens": None, "context_tokens": 4000,
    "kb_ids": [], "tools": [], "dm_policy": "always", "group_policy": "mention",
    "quotas": {k: None for k in QUOTA_KEYS}, "enabled": True,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BotRef:
    """A bot as a conversation's member list sees it: enough to apply the reply policy."""

    id: str
    user_id: str
    name: str
    dm_policy: str
    group_policy: str


def public_view(row: AiBot) -> dict[str, Any]:
    """What every tenant user may see of a bot."""
    return {
        "id": row.id,
        "user_id": row.user_id,
        "name": row.name,
        "description": row.description,
        "avatar_url": row.avatar_url,
        "enabled": row.enabled,
    }


def bot_view(row: AiBot) -> dict[str, Any]:
    """The whole configuration, for admins."""
    return {
        **public_view(row),
        "persona": row.persona,
        "presets": [dict(p) for p in row.presets or []],
        "provider_ids": list(row.provider_ids or []),
        "model": row.model,
        "temperature": row.temperature,
        "max_tokens": row.max_tokens,
        "context_tokens": row.context_tokens,
        "kb_ids": list(row.kb_ids or []),
        "tools": list(row.tools or []),
        "dm_policy": row.dm_policy,
        "group_policy": row.group_policy,
        "quotas": {k: (row.quotas or {}).get(k) for k in QUOTA_KEYS},
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def config_of(row: AiBot, providers: Sequence[Any] = ()) -> BotConfig:
    return BotConfig(
        id=row.id,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        name=row.name,
        persona=row.persona,
        avatar_url=row.avatar_url,
        presets=tuple(Preset(**p) for p in row.presets or []),
        providers=tuple(providers),
        model=row.model,
        temperature=row.temperature,
        max_tokens=row.max_tokens,
        context_tokens=row.context_tokens,
        kb_ids=tuple(row.kb_ids or []),
        tools=tuple(row.tools or []),
        dm_policy=row.dm_policy,  # type: ignore[arg-type]  # checked on the way in
        group_policy=row.group_policy,  # type: ignore[arg-type]
        quotas=Quotas(**{k: (row.quotas or {}).get(k) for k in QUOTA_KEYS}),
        enabled=row.enabled,
        extra={"description": row.description},
    )


def _invalid(field: str, message: str, **details: Any) -> InvalidRequest:
    return InvalidRequest(message, details={"field": field, **details})


def _in_range(field: str, value: Any, bounds: tuple[float, float], *, integer: bool) -> None:
    if value is None:
        return
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _invalid(field, f"{field} must be a number")
    if not bounds[0] <= value <= bounds[1]:
        raise _invalid(field, f"{field} must be between {bounds[0]:g} and {bounds[1]:g}",
                       min=bounds[0], max=bounds[1])  # fmt: skip


def _unique_ids(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(field, f"{field} must be a list of strings")
    if len(value) > LIST_LIMITS[field]:
        raise _invalid(field, f"at most {LIST_LIMITS[field]} {field}")
    if len(set(value)) != len(value):
        raise _invalid(field, f"{field} lists an entry twice")
    return list(value)


def _check_presets(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > LIST_LIMITS["presets"]:
        raise _invalid("presets", f"presets must be a list of at most {LIST_LIMITS['presets']}")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, preset in enumerate(value):
        if not isinstance(preset, dict):
            raise _invalid("presets", "each preset is an object with a name", index=i)
        unknown = sorted(set(preset) - set(PRESET_KEYS))
        if unknown:
            raise _invalid("presets", f"unknown preset fields: {', '.join(unknown)}", index=i)
        name = preset.get("name")
        if not isinstance(name, str) or not PRESET_NAME.match(name):
            raise _invalid("presets", "a preset name is 1-64 letters, digits, _ or -", index=i)
        if name.casefold() in seen:
            raise _invalid("presets", f"two presets are named {name!r}", index=i, name=name)
        seen.add(name.casefold())
        _in_range("temperature", preset.get("temperature"), TEMPERATURE, integer=False)
        _in_range("max_tokens", preset.get("max_tokens"), MAX_TOKENS, integer=True)
        for text in ("persona", "model"):
            if preset.get(text) is not None and not isinstance(preset[text], str):
                raise _invalid("presets", f"a preset's {text} is text", index=i)
        out.append({k: preset.get(k) for k in PRESET_KEYS})
    return out


def _check_quotas(value: Any) -> dict[str, int | None]:
    if not isinstance(value, dict):
        raise _invalid("quotas", "quotas is an object")
    unknown = sorted(set(value) - set(QUOTA_KEYS))
    if unknown:
        raise _invalid("quotas", f"unknown quotas: {', '.join(unknown)}", known=list(QUOTA_KEYS))
    for key, limit in value.items():
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):  # fmt: skip
            raise _invalid("quotas", f"quotas.{key} is a whole number, 0 or more (0: unlimited)")
    return {k: value.get(k) for k in QUOTA_KEYS}


def check_config(changes: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise the configuration fields present in ``changes`` (no database)."""
    out = {k: v for k, v in changes.items() if k in CONFIG_FIELDS}
    if "name" in out and (
        not isinstance(out["name"], str) or not 1 <= len(out["name"].strip()) <= 200
    ):
        raise _invalid("name", "a bot's name is 1-200 characters")
    if "name" in out:
        out["name"] = out["name"].strip()
    _in_range("temperature", out.get("temperature"), TEMPERATURE, integer=False)
    _in_range("max_tokens", out.get("max_tokens"), MAX_TOKENS, integer=True)
    if "context_tokens" in out:
        if out["context_tokens"] is None:
            raise _invalid("context_tokens", "context_tokens cannot be cleared")
        _in_range("context_tokens", out["context_tokens"], CONTEXT_TOKENS, integer=True)
    if "dm_policy" in out and out["dm_policy"] not in DM_POLICIES:
        raise _invalid("dm_policy", f"dm_policy is one of {', '.join(DM_POLICIES)}",
                       allowed=list(DM_POLICIES))  # fmt: skip
    if "group_policy" in out and out["group_policy"] not in GROUP_POLICIES:
        raise _invalid("group_policy", f"group_policy is one of {', '.join(GROUP_POLICIES)}",
                       allowed=list(GROUP_POLICIES))  # fmt: skip
    if "presets" in out:
        out["presets"] = _check_presets(out["presets"] or [])
    for field in ("provider_ids", "kb_ids", "tools"):
        if field in out:
            out[field] = _unique_ids(field, out[field] or [])
    bad_tools = [t for t in out.get("tools", []) if not TOOL_REF.match(t)]
    if bad_tools:
        raise _invalid("tools", "tool names look like kb_search, http:NAME or mcp:SERVER[:TOOL]",
                       invalid=bad_tools)  # fmt: skip
    if "quotas" in out:
        out["quotas"] = _check_quotas(out["quotas"] or {})
    for text in ("description", "persona"):
        if text in out and out[text] is None:
            out[text] = ""
    if "enabled" in out and not isinstance(out["enabled"], bool):
        raise _invalid("enabled", "enabled is true or false")
    return out


def _username_for(name: str) -> str:
    """The bot user's default username: its name in lowercase ASCII, or "bot"."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-")
    return slug or "bot"


class BotService:
    def __init__(self, db: Database, users: UserService, providers: ProviderConfigService) -> None:
        self.db = db
        self.users = users
        self.providers = providers

    # -- admin CRUD ------------------------------------------------------------------------

    async def create(
        self, principal: Principal, fields: dict[str, Any], *, username: str | None = None
    ) -> dict[str, Any]:
        """Create the bot and its user. ``username`` defaults to the name in ASCII (with a
        random suffix if taken); an explicit one that is taken is a ``Conflict``."""
        principal.require_admin(SCOPE)
        if "name" not in fields:
            raise _invalid("name", "a bot needs a name")
        values = {**_DEFAULTS, **check_config(fields)}
        async with self.db.read() as s:
            await self._check_refs(s, principal.tenant_id, values)
        user_id = await self._create_user(principal.tenant_id, values, username)
        now = utcnow()
        row = AiBot(id=new_id(), tenant_id=principal.tenant_id, user_id=user_id,
                    created_at=now, updated_at=now, **values)  # fmt: skip
        try:
            async with self.db.write() as s:
                s.add(row)
        except BaseException:
            await self._discard_user(principal.tenant_id, user_id)
            raise
        return bot_view(row)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        """Every bot of the tenant; the full configuration only for admins."""
        view = bot_view if self._is_admin(principal) else public_view
        async with self.db.read() as s:
            rows = await s.scalars(
                select(AiBot)
                .where(AiBot.tenant_id == principal.tenant_id)
                .order_by(AiBot.name, AiBot.id)
            )
            return [view(r) for r in rows]

    async def get(self, principal: Principal, bot_id: str) -> dict[str, Any]:
        view = bot_view if self._is_admin(principal) else public_view
        async with self.db.read() as s:
            return view(await _load(s, principal.tenant_id, bot_id))

    async def update(
        self, principal: Principal, bot_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        values = check_config(changes)
        async with self.db.write() as s:
            row = await _load(s, principal.tenant_id, bot_id)
            await self._check_refs(s, principal.tenant_id, values)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = utcnow()
            if {"name", "avatar_url"} & values.keys():
                user = await s.get(User, row.user_id)
                if user is not None:
                    user.display_name = row.name
                    user.avatar_url = row.avatar_url
                    user.updated_at = row.updated_at
        return bot_view(row)

    async def delete(self, principal: Principal, bot_id: str) -> None:
        """Delete the configuration (and its conversation state); disable the bot's user."""
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            row = await _load(s, principal.tenant_id, bot_id)
            user_id = row.user_id
            await s.execute(delete(AiConversationState).where(AiConversationState.bot_id == row.id))
            await s.delete(row)
            user = await s.get(User, user_id)
            if user is not None:
                user.disabled = True
                user.updated_at = utcnow()
        await self.users.auth.revoke_all_tokens(principal.tenant_id, user_id)

    # -- for the reply engine --------------------------------------------------------------

    async def load(self, tenant_id: str, bot_id_or_user_id: str) -> BotConfig:
        """The bot (by its id or its user's id) with its providers' keys opened, in order."""
        async with self.db.read() as s:
            row = await s.scalar(
                select(AiBot).where(
                    AiBot.tenant_id == tenant_id,
                    or_(AiBot.id == bot_id_or_user_id, AiBot.user_id == bot_id_or_user_id),
                )
            )
            if row is None:
                raise NotFound("no such bot", details={"bot_id": bot_id_or_user_id})
            providers = await self.providers.configs(s, tenant_id, row.provider_ids or [])
        return config_of(row, providers)

    async def bots_among(
        self, s: AsyncSession, tenant_id: str, user_ids: Sequence[str]
    ) -> builtins.list[BotRef]:
        """The enabled bots whose users are among ``user_ids`` (a conversation's members)."""
        if not user_ids:
            return []
        rows = await s.execute(
            select(AiBot.id, AiBot.user_id, AiBot.name, AiBot.dm_policy, AiBot.group_policy)
            .where(
                AiBot.tenant_id == tenant_id,
                AiBot.enabled.is_(True),
                AiBot.user_id.in_(list(user_ids)),
            )
            .order_by(AiBot.id)
        )
        return [BotRef(*r) for r in rows.all()]

    async def get_preset(self, tenant_id: str, conversation_id: str, bot_id: str) -> str | None:
        """The preset chosen in this conversation (None: the bot's own configuration)."""
        async with self.db.read() as s:
            state = await s.get(AiConversationState, (conversation_id, bot_id))
        if state is None or state.tenant_id != tenant_id:
            return None
        return state.preset

    async def set_preset(
        self, tenant_id: str, conversation_id: str, bot_id: str, name: str | None
    ) -> str | None:
        """Choose a preset for this conversation (matched without regard to case); ``None``
        goes back to the bot's own configuration. Returns the preset's name as configured.
        An unknown name is an ``InvalidRequest`` whose details list the available ones."""
        async with self.db.read() as s:
            bot = await _load(s, tenant_id, bot_id)
        available = [p["name"] for p in bot.presets or []]
        chosen: str | None = None
        if name is not None:
            chosen = next((p for p in available if p.casefold() == name.casefold()), None)
            if chosen is None:
                raise InvalidRequest(
                    f"no preset named {name!r}; available: {', '.join(available) or 'none'}",
                    details={"field": "preset", "preset": name, "available": available},
                )
        for attempt in range(2):  # a concurrent first insert (the memory's summary) may win
            try:
                async with self.db.write() as s:
                    state = await s.get(AiConversationState, (conversation_id, bot_id))
                    if state is None:
                        s.add(AiConversationState(
                            conversation_id=conversation_id, bot_id=bot_id, tenant_id=tenant_id,
                            preset=chosen, summary_upto_seq=0, updated_at=utcnow(),
                        ))  # fmt: skip
                    else:
                        state.preset = chosen
                        state.updated_at = utcnow()
                break
            except IntegrityError:
                if attempt:
                    raise
        return chosen

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _is_admin(principal: Principal) -> bool:
        return principal.is_tenant_admin or (
            principal.api_key_id is not None and principal.has_scope(SCOPE)
        )

    async def _check_refs(self, s: AsyncSession, tenant_id: str, values: dict[str, Any]) -> None:
        """Knowledge bases and providers must be this tenant's (others' look like missing)."""
        wanted = values.get("kb_ids") or []
        if wanted:
            found = set(
                (
                    await s.scalars(
                        select(KnowledgeBase.id).where(
                            KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.id.in_(wanted)
                        )
                    )
                ).all()
            )
            missing = [k for k in wanted if k not in found]
            if missing:
                raise _invalid("kb_ids", "no such knowledge base", missing=missing)
        wanted = values.get("provider_ids") or []
        if wanted:
            found = await self.providers.existing_ids(s, tenant_id, wanted)
            missing = [p for p in wanted if p not in found]
            if missing:
                raise _invalid("provider_ids", "no such provider", missing=missing)

    async def _create_user(
        self, tenant_id: str, values: dict[str, Any], username: str | None
    ) -> str:
        first = username or _username_for(values["name"])
        try:
            return await self._new_bot_user(tenant_id, first, values)
        except Conflict:
            if username:
                raise
        # The derived name is taken (two bots called "Helper"): add a random suffix.
        return await self._new_bot_user(tenant_id, f"{first[:40]}-{new_id()[-6:].lower()}", values)

    async def _new_bot_user(self, tenant_id: str, username: str, values: dict[str, Any]) -> str:
        user = await self.users.create_user(
            tenant_id, username=username, display_name=values["name"], kind="bot",
            avatar_url=values.get("avatar_url"),
        )  # fmt: skip
        return str(user["id"])

    async def _discard_user(self, tenant_id: str, user_id: str) -> None:
        """Undo ``_create_user`` when the bot row could not be written (no one saw it yet)."""
        async with self.db.write() as s:
            await s.execute(delete(User).where(User.tenant_id == tenant_id, User.id == user_id))


async def _load(s: AsyncSession, tenant_id: str, bot_id: str) -> AiBot:
    row = await s.scalar(select(AiBot).where(AiBot.tenant_id == tenant_id, AiBot.id == bot_id))
    if row is None:
        raise NotFound("no such bot", details={"bot_id": bot_id})
    return row
