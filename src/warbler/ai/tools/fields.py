"""Checks of the fields admins give HTTP tools and MCP servers (names, roles, timeouts)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from warbler.ai.tools.permissions import DEFAULT_ALLOWED_ROLES, GRANTABLE_ROLES
from warbler.errors import InvalidRequest

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
BUILTIN_NAMES = ("kb_search", "lookup_colleague", "handoff")
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 120.0


def check_name(name: str) -> str:
    # "__" separates an MCP server's name from its tools' names in what the model sees.
    if not NAME.match(name) or "__" in name:
        raise InvalidRequest(
            "a name is 1-40 of a-z, 0-9 and _ (starting with a letter, no '__')",
            details={"field": "name"},
        )
    if name in BUILTIN_NAMES:
        raise InvalidRequest(f"'{name}' is a built-in tool's name", details={"field": "name"})
    return name


def check_roles(roles: Sequence[str] | None) -> list[str]:
    if roles is None:
        return list(DEFAULT_ALLOWED_ROLES)
    unknown = sorted(set(roles) - set(GRANTABLE_ROLES))
    if unknown:
        raise InvalidRequest(
            f"unknown roles: {', '.join(unknown)} (one of {', '.join(GRANTABLE_ROLES)})",
            details={"field": "allowed_roles"},
        )
    return sorted(set(roles), key=GRANTABLE_ROLES.index)


def check_timeout(seconds: float | None, default: float) -> float:
    if seconds is None:
        return default
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise InvalidRequest(
            f"timeout_seconds is between {MIN_TIMEOUT:g} and {MAX_TIMEOUT:g}",
            details={"field": "timeout_seconds"},
        )
    return float(seconds)


def check_header(name: str, value: str, *, field: str) -> None:
    if not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$", name):
        raise InvalidRequest(f"'{name}' is not a valid header name", details={"field": field})
    if len(value) > 8000 or any(c in value for c in "\r\n\0"):
        raise InvalidRequest("a header value is one line of at most 8000 characters",
                             details={"field": field})  # fmt: skip
