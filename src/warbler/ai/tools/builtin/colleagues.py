"""``lookup_colleague``: find a colleague in the tenant's directory, with their presence."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from warbler.ai.providers.base import ToolSpec
from warbler.ai.tools.base import ToolContext, ToolResult
from warbler.ai.tools.permissions import DIRECTORY_READ
from warbler.im.principal import HUMAN_ROLES
from warbler.store.models import User

MAX_RESULTS = 10
DEFAULT_RESULTS = 5


class LookupColleague:
    ref = "lookup_colleague"
    permission: str | None = DIRECTORY_READ
    allowed_roles: tuple[str, ...] | None = None
    timeout_seconds: float | None = None
    spec = ToolSpec(
        name="lookup_colleague",
        description="Find a colleague (a person in this organisation) by name, username or "
        "email. Returns their display name, username, role and whether they are online.",
        parameters={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 100,
                    "description": "A name (any language), a username or an email address.",
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        tenant_id = ctx.principal.tenant_id
        limit = int(args.get("limit") or DEFAULT_RESULTS)
        stmt = (
            select(User)
            .where(
                User.tenant_id == tenant_id,
                User.kind == "human",
                User.role.in_(HUMAN_ROLES),
                User.disabled.is_(False),
                _matches(args["query"]),
            )
            .order_by(User.display_name, User.username)
            .limit(limit)
        )
        async with ctx.services.db.read() as s:
            users = list((await s.scalars(stmt)).all())
        presence = await ctx.services.presence.status(tenant_id, [u.id for u in users])
        found = []
        for user in users:
            seen = presence.get(user.id, {})
            last_seen = seen.get("last_seen")
            found.append(
                {
                    "user_id": user.id,
                    "display_name": user.display_name,
                    "username": user.username,
                    "role": user.role,
                    "online": bool(seen.get("online")),
                    "last_seen": last_seen.isoformat() if last_seen else None,
                }
            )
        payload: dict[str, Any] = {"colleagues": found}
        if not found:
            payload["note"] = "no colleague matches this query"
        return ToolResult.ok(payload, data={"matches": len(found)})


def _matches(query: str) -> Any:
    """Every word of the query in the username or display name ("ann lee", "张伟"); an email
    also matches by its local part (usernames are often that)."""
    words = query.strip().split()
    if len(words) == 1 and "@" in words[0]:
        local = words[0].split("@", 1)[0]
        return or_(_like(User.username, words[0]), User.username.ilike(_escape(local), escape="\\"))
    return and_(*(or_(_like(User.username, w), _like(User.display_name, w)) for w in words))


def _like(column: Any, word: str) -> Any:
    return column.ilike(f"%{_escape(word)}%", escape="\\")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
