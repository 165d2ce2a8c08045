"""Where personal data lives: every column that names a user, and what erasure does with it.

Columns are found generically (a foreign key to ``users.id``, a name like ``*_user_id``,
``sender_id``, ``author_id``, ``created_by``, or an identity column such as ``email``), so a
table added by any module is noticed. Each one must have a rule in ``RULES``: erasure runs
the ``delete`` and ``null`` rules itself, ``custom`` ones are done by name in
``privacy/erasure.py``, and ``keep`` says why the value may stay.
``tests/integration/test_erasure_catalog.py`` fails on a column with no rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Column, MetaData, Table

Action = Literal["delete", "null", "keep", "custom", "with_row"]

_USER_REF = re.compile(
    r"(?:^|_)(?:user|sender|author|actor|uploader|assignee|visitor|owner|agent|member|"
    r"recipient|creator|requester|trainee|customer|subject)_ids?$|(?:^|_)by$"
)
IDENTITY_COLUMNS = frozenset(
    {"username", "email", "phone", "mobile", "external_id", "ip", "ip_address", "user_agent",
     "display_name", "real_name", "address"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """``delete``: rows whose column is the user's id go. ``null``: the column is cleared.
    ``custom``: erasure handles it by name. ``keep``: stays, for the reason given.
    ``with_row``: an identity column of a row that another rule of its table removes."""

    action: Action
    why: str


def _keep(why: str) -> Rule:
    return Rule("keep", why)


_ADMIN_RECORD = _keep("who configured a tenant resource; the id now names the tombstone")

RULES: dict[str, Rule] = {
    # messaging core
    "users.username": Rule("custom", "the row becomes the tombstone 'Deleted user'"),
    "users.display_name": Rule("custom", "the row becomes the tombstone 'Deleted user'"),
    "access_tokens.user_id": Rule("delete", "every session ends"),
    "api_keys.created_by": _keep("a tenant's server credential, not the user's"),
    "conversations.created_by": _keep("shared conversation metadata"),
    "members.user_id": Rule(
        "custom",
        "leaves every group (ownership handed over); other memberships stay with "
        "the read marker and settings reset",
    ),
    "messages.sender_id": Rule(
        "custom",
        "each message becomes a tombstone (content, file, search row gone) that "
        "keeps its seq, so others' history still reads in order",
    ),
    "message_hides.user_id": Rule("delete", "their own delete-for-me marks"),
    "events.target_user_id": Rule("delete", "events meant for their devices only"),
    "events.actor_id": _keep("ids only: message events point at the (erased) message row"),
    "files.uploader_id": Rule("custom", "rows and bytes on disk are deleted"),
    "webhooks.created_by": _ADMIN_RECORD,
    "jobs.locked_by": _keep("a job worker's name, not a user"),
    # the audit log is append-only (database triggers refuse UPDATE and DELETE)
    "audit_log.actor_id": _keep(
        "auditors need who did what; the id names the tombstone, so entries are pseudonymous "
        "and leave with the audit retention period"
    ),
    "audit_log.ip": _keep("as audit_log.actor_id"),
    "audit_log.user_agent": _keep("as audit_log.actor_id"),
    # AI
    "ai_bots.user_id": _keep("bots are not erased: delete the bot instead"),
    "ai_usage.user_id": Rule("null", "tokens and cost stay in the bill and quotas, unlinked"),
    "kb_curated_answers.created_by": _ADMIN_RECORD,
    "ai_http_tools.created_by": _ADMIN_RECORD,
    "ai_mcp_servers.created_by": _ADMIN_RECORD,
    # customer service
    "support_settings.bot_user_id": _keep("a bot"),
    "support_team_members.user_id": Rule("delete", "team memberships"),
    "support_agents.user_id": Rule("delete", "agent availability and capacity"),
    "support_visitors.user_id": Rule("delete", "how a visitor is found again"),
    "support_visitors.external_id": Rule("with_row", "deleted with support_visitors.user_id"),
    "support_visitors.email": Rule("with_row", "deleted with support_visitors.user_id"),
    "support_conversations.visitor_id": Rule(
        "custom",
        "every message of a visitor's support conversations is erased, tickets "
        "lose their summary, CSAT comment and reason details, notes on them are deleted",
    ),
    "support_conversations.bot_user_id": _keep("a bot"),
    "support_tickets.assignee_id": _keep("which agent handled a ticket (id only)"),
    "support_tickets.resolved_by": _keep("which agent resolved a ticket (id only)"),
    "support_transitions.actor_id": _keep("the support audit trail (ids and reason codes)"),
    "support_notes.author_id": Rule("delete", "notes they wrote"),
    "support_canned_replies.created_by": _ADMIN_RECORD,
    # privacy
    "privacy_exports.user_id": Rule("custom", "their export archives (rows and bytes)"),
    "privacy_exports.requested_by": _keep("who asked for someone's export (id only)"),
    "privacy_retention.updated_by": _ADMIN_RECORD,
}


def personal_columns(metadata: MetaData) -> list[tuple[Table, Column[object]]]:
    """Every column of ``metadata`` that names a user or holds an identity."""
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            to_users = any(fk.column.table.name == "users" for fk in column.foreign_keys)
            if to_users or _USER_REF.search(column.name) or column.name in IDENTITY_COLUMNS:
                found.append((table, column))
    return found


def uncovered(metadata: MetaData) -> list[str]:
    """``table.column`` names of personal columns with no rule (should be none)."""
    return [
        f"{table.name}.{column.name}"
        for table, column in personal_columns(metadata)
        if f"{table.name}.{column.name}" not in RULES
    ]


def generic_rules(metadata: MetaData) -> list[tuple[Table, Column[object], Action]]:
    """The ``delete`` and ``null`` rules that apply to this schema, in a safe order
    (dependent tables first)."""
    out: list[tuple[Table, Column[object], Action]] = []
    for table, column in reversed(personal_columns(metadata)):
        rule = RULES.get(f"{table.name}.{column.name}")
        if rule is not None and rule.action in ("delete", "null"):
            out.append((table, column, rule.action))
    return out
