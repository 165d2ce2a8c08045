"""Whether the user who asked a bot may have it run a tool. The bot never has rights of its own.

A tool names one permission; the asking principal holds it or not:

==================  ============================================  ==========================
permission          users (by role)                               API keys without a user
==================  ============================================  ==========================
``kb:search``       every user; retrieval then keeps only the     the ``kb:read`` scope
                    KBs this user may read (``kb/access.py``)
``directory:read``  owner, admin, agent, member (not visitors     the ``users:read`` scope
                    or bots)
``support:handoff`` owner, admin, agent, member, visitor          never (no one to hand off)
``http:<name>``     the tool's ``allowed_roles``; tenant owners   the ``admin`` scope
``mcp:<server>``    and admins always                             the ``admin`` scope
==================  ============================================  ==========================

An API key acting as a user (``X-Warbler-User``) is judged as that user. The ``admin`` scope
holds every permission. A disabled tool is not offered at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from warbler.im.principal import ADMIN_ROLES, HUMAN_ROLES, Principal

KB_SEARCH = "kb:search"
DIRECTORY_READ = "directory:read"
SUPPORT_HANDOFF = "support:handoff"

# Built-in permissions: (roles that hold it, the scope an API key without a user needs).
BUILTIN: dict[str, tuple[tuple[str, ...], str | None]] = {
    KB_SEARCH: (("owner", "admin", "agent", "member", "bot", "visitor"), "kb:read"),
    DIRECTORY_READ: (HUMAN_ROLES, "users:read"),
    SUPPORT_HANDOFF: ((*HUMAN_ROLES, "visitor"), None),
}

# Tenant-defined tools (HTTP tools, MCP servers) use "http:<name>" / "mcp:<server>".
DEFINED_PREFIXES = ("http:", "mcp:")
# The roles an admin may list in ``allowed_roles`` (bots ask nothing of their own).
GRANTABLE_ROLES = ("owner", "admin", "agent", "member", "visitor")
DEFAULT_ALLOWED_ROLES = HUMAN_ROLES


def allowed(
    principal: Principal, permission: str | None, allowed_roles: Sequence[str] | None = None
) -> bool:
    """True when ``principal`` holds ``permission`` (None: a tool anyone may run)."""
    if permission is None:
        return True
    if principal.user_id is None:
        if principal.has_scope("admin"):
            return True
        scope = BUILTIN.get(permission, ((), None))[1]
        return scope is not None and principal.has_scope(scope)
    if permission in BUILTIN:
        return principal.role in BUILTIN[permission][0]
    if permission.startswith(DEFINED_PREFIXES):
        return principal.role in ADMIN_ROLES or principal.role in (allowed_roles or ())
    return False  # an unknown permission is held by no one


def refusal(permission: str, tool_name: str) -> str:
    """The sentence the model reads when the asking user lacks ``permission``."""
    return (
        f"The user you are helping is not allowed to use the tool '{tool_name}' "
        f"(it needs the '{permission}' permission). The tool was not run. Tell the user you "
        "cannot do this for them; do not try to get around it."
    )
