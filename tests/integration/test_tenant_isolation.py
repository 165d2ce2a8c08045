"""Tenant isolation: a member of tenant A reaches nothing of tenant B through any endpoint.

Every route under /api/v1 must appear in ``ROUTES`` below, so a new route fails this test
until someone decides how it is checked. Each route is called with B's real ids in every
path parameter (and in the body where an id fits) by three callers of tenant A: the owner's
access token, A's admin API key acting as B's user, and A's admin API key as a service.
Each route is also called once with A's own ids by A's owner, which proves the body is valid
and the route works, so a refusal with B's ids means isolation and not a typo. ``MIXED``
puts B's ids inside A's own containers (conversation, KB, bot); knowledge-base search gets
questions B's content answers best. Every id of B is a secret: no 2xx answer may carry one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from sqlalchemy import select

from tests.conftest import API, backend_settings, group_of, seed_tenant, send
from tests.fakes.mcp_process import serve_http
from warbler.config import Settings
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.store.models import Base

MARKERS = ("zebramarkerb", "斑马秘密", "B-group-title-quartz", "B-announcement-onyx")
PASSWORD = "correct horse battery"
FAKE_MCP = Path(__file__).parents[1] / "fakes" / "mcp_server.py"
# Columns whose values move on their own (touch timestamps, the webhook dispatcher's cursor,
# and a delivery job's progress while the runner retries it against a closed port).
VOLATILE_COLUMNS = {"last_used_at", "cursor"}
VOLATILE_JOB_COLUMNS = {"status", "attempts", "run_at", "locked_by", "locked_until",
                        "last_error", "result", "updated_at"}  # fmt: skip
REFUSED = {400, 403, 404, 422}


@dataclass
class Ids:
    """The ids a route's path parameters and bodies are filled with."""

    conversation_id: str | None = None
    message_id: str | None = None
    user_id: str | None = None
    token_id: str | None = None
    api_key_id: str | None = None
    file_id: str | None = None
    webhook_id: str | None = None
    delivery_id: str | None = None
    job_id: str | None = None
    direct_id: str | None = None  # no route takes it; it is checked for leaks only
    username: str = ""
    tenant_slug: str = ""
    bot_id: str | None = None
    provider_id: str | None = None
    kb_id: str | None = None
    doc_id: str | None = None
    answer_id: str | None = None
    tool_id: str | None = None
    server_id: str | None = None
    widget_id: str | None = None  # public (it is in the tenant's web pages): see PUBLIC_IDS
    # Customer service: a support conversation (``/support/conversations/{conversation_id}``
    # routes take it, see ``support_path``), its ticket, a canned reply; the ticket's
    # visitor's token (A's only: the CSAT control call is the visitor's, see Spec.control).
    support_conversation_id: str | None = None
    ticket_id: str | None = None
    canned_id: str | None = None
    visitor_token: str = ""
    team_id: str | None = None  # a support team
    agent_id: str | None = None  # a user with the agent role (``/support/agents/{user_id}``)
    export_id: str | None = None  # a ready data export (of the tenant's owner)
    user_name: str = ""  # the username of ``user_id`` (what erasing them is confirmed with)

    def path(self, template: str) -> str:
        out = support_path(template)
        for f in fields(self):
            placeholder = "{" + f.name + "}"
            if placeholder in out:
                value = getattr(self, f.name)
                assert value, f"no {f.name} to put in {template}"
                out = out.replace(placeholder, value)
        assert "{" not in out, f"unknown path parameter in {template}: extend Ids"
        return out


def support_path(template: str) -> str:
    """Support routes name their conversation ``conversation_id``; it is a support one."""
    if template.startswith("/support/conversations/{conversation_id}"):
        return template.replace("{conversation_id}", "{support_conversation_id}")
    if template == "/support/agents/{user_id}":  # an agent's settings: the user is an agent
        return template.replace("{user_id}", "{agent_id}")
    return template


Body = Callable[[Ids], Any]


@dataclass(frozen=True)
class Spec:
    """How one route is exercised. ``expect``: "refuse" (4xx for B's ids) or "clean"
    (any non-5xx answer, 2xx for A's owner, with nothing of B in it)."""

    body: Body | None = None
    query: Callable[[Ids], dict[str, Any]] | None = None
    expect: str = "refuse"
    auth: bool = True
    ws: bool = False
    multipart: bool = False  # body returns (form fields, files)
    control: str = "owner"  # who makes A's own control call: "owner", or "visitor"
    open_ticket: bool = False  # A's control call needs a waiting ticket (else a resolved one)


def _no_body(_: Ids) -> None:
    return None


ROUTES: dict[tuple[str, str], Spec] = {
    # auth
    ("POST", "/auth/login"): Spec(
        body=lambda i: {"tenant": "tenant-a", "username": i.username, "password": PASSWORD},
        auth=False,
    ),
    ("POST", "/auth/logout"): Spec(expect="clean"),
    ("GET", "/auth/tokens"): Spec(expect="clean"),
    ("DELETE", "/auth/tokens/{token_id}"): Spec(),
    ("POST", "/auth/password"): Spec(
        body=lambda i: {"current_password": PASSWORD, "new_password": PASSWORD}, expect="clean"
    ),
    # users
    ("GET", "/users/me"): Spec(expect="clean"),
    ("PATCH", "/users/me"): Spec(body=lambda i: {"display_name": "Ann A"}, expect="clean"),
    ("GET", "/users"): Spec(query=lambda i: {"q": i.username[:3]}, expect="clean"),
    ("GET", "/users/{user_id}"): Spec(),
    ("POST", "/users"): Spec(body=lambda i: {"username": f"new-{new_id()}"}, expect="clean"),
    ("PATCH", "/users/{user_id}"): Spec(body=lambda i: {"display_name": "pwned", "disabled": True}),
    ("POST", "/users/{user_id}/tokens"): Spec(body=lambda i: {"device": "intruder"}),
    ("POST", "/users/{user_id}/password"): Spec(
        body=lambda i: {"new_password": "pwned by tenant a"}
    ),
    ("GET", "/presence"): Spec(query=lambda i: {"user_ids": [i.user_id]}, expect="clean"),
    # API keys
    ("POST", "/api-keys"): Spec(
        body=lambda i: {"name": "a-key", "scopes": ["users:read"]}, expect="clean"
    ),
    ("GET", "/api-keys"): Spec(expect="clean"),
    ("DELETE", "/api-keys/{api_key_id}"): Spec(),
    # conversations
    ("POST", "/conversations"): Spec(body=lambda i: {"kind": "direct", "user_id": i.user_id}),
    ("GET", "/conversations"): Spec(expect="clean"),
    ("GET", "/conversations/{conversation_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}"): Spec(
        body=lambda i: {"title": "pwned", "announcement": "pwned"}
    ),
    ("GET", "/conversations/{conversation_id}/members"): Spec(),
    ("POST", "/conversations/{conversation_id}/members"): Spec(
        body=lambda i: {"user_ids": [i.user_id]}
    ),
    ("DELETE", "/conversations/{conversation_id}/members/{user_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}/members/{user_id}"): Spec(
        body=lambda i: {"role": "owner"}
    ),
    ("PUT", "/conversations/{conversation_id}/settings"): Spec(body=lambda i: {"muted": True}),
    ("POST", "/conversations/{conversation_id}/read"): Spec(body=lambda i: {"seq": 1}),
    ("GET", "/conversations/{conversation_id}/receipts"): Spec(),
    ("POST", "/conversations/{conversation_id}/typing"): Spec(body=lambda i: {}),
    # messages
    ("POST", "/conversations/{conversation_id}/messages"): Spec(
        body=lambda i: {"text": "intrusion", "reply_to_id": i.message_id}
    ),
    ("GET", "/conversations/{conversation_id}/messages"): Spec(),
    ("GET", "/conversations/{conversation_id}/messages/{message_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}/messages/{message_id}"): Spec(
        body=lambda i: {"text": "pwned"}
    ),
    ("DELETE", "/conversations/{conversation_id}/messages/{message_id}"): Spec(),
    ("POST", "/conversations/{conversation_id}/messages/{message_id}/recall"): Spec(),
    # search and events
    ("GET", "/search"): Spec(
        query=lambda i: {"q": MARKERS[0], "conversation_id": i.conversation_id}, expect="clean"
    ),
    ("GET", "/events"): Spec(query=lambda i: {"cursor": 0}, expect="clean"),
    # files (uploads are multipart: a conversation_id field and a file part)
    ("POST", "/files"): Spec(
        body=lambda i: (
            {"conversation_id": i.conversation_id},
            {"file": ("note.txt", b"hello there", "text/plain")},
        ),
        multipart=True,
    ),
    ("GET", "/files/{file_id}"): Spec(),
    ("GET", "/files/{file_id}/content"): Spec(),
    # webhooks and their deliveries (a delivery is a job)
    ("POST", "/webhooks"): Spec(
        body=lambda i: {"url": "http://127.0.0.1:9/a-hook", "description": "a hook"},
        expect="clean",
    ),
    ("GET", "/webhooks"): Spec(expect="clean"),
    ("GET", "/webhooks/{webhook_id}"): Spec(),
    ("PATCH", "/webhooks/{webhook_id}"): Spec(
        body=lambda i: {"url": "http://127.0.0.1:9/pwned", "active": False}
    ),
    ("DELETE", "/webhooks/{webhook_id}"): Spec(),
    ("POST", "/webhooks/{webhook_id}/rotate-secret"): Spec(),
    ("GET", "/webhooks/{webhook_id}/deliveries"): Spec(),
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): Spec(),
    ("GET", "/jobs"): Spec(query=lambda i: {"ref": i.webhook_id}, expect="clean"),
    ("POST", "/jobs/{job_id}/retry"): Spec(),
    # bots and AI administration
    ("POST", "/bots"): Spec(
        body=lambda i: {"name": f"a-bot-{new_id()}", "provider_ids": [i.provider_id]}
    ),
    ("GET", "/bots"): Spec(expect="clean"),
    ("GET", "/bots/{bot_id}"): Spec(),
    ("PATCH", "/bots/{bot_id}"): Spec(body=lambda i: {"persona": "pwned", "enabled": False}),
    ("DELETE", "/bots/{bot_id}"): Spec(),
    ("POST", "/ai/providers"): Spec(
        body=lambda i: {"name": f"p-{new_id()}", "kind": "openai", "api_key": "sk-a"},
        expect="clean",
    ),
    ("GET", "/ai/providers"): Spec(expect="clean"),
    ("GET", "/ai/providers/{provider_id}"): Spec(),
    ("PATCH", "/ai/providers/{provider_id}"): Spec(
        body=lambda i: {"base_url": "https://evil.example/v1"}
    ),
    ("DELETE", "/ai/providers/{provider_id}"): Spec(),
    ("GET", "/ai/usage"): Spec(query=lambda i: {"bot_id": i.bot_id}, expect="clean"),
    ("GET", "/ai/usage/summary"): Spec(expect="clean"),
    ("GET", "/ai/quotas"): Spec(expect="clean"),
    # the audit log: A's own entries only (A's refused attempts on B's ids record nothing)
    ("GET", "/audit"): Spec(query=lambda i: {"limit": 500}, expect="clean"),
    ("GET", "/audit/export"): Spec(query=lambda i: {"format": "csv"}, expect="clean"),
    ("PUT", "/ai/quotas"): Spec(body=lambda i: {"messages_per_minute": 100}, expect="clean"),
    # PII redaction: B's policy has a marker keyword and a pattern named after a marker
    # (``build_tenant_b``); A's preview text matches that pattern if B's policy were used.
    ("GET", "/security/redaction"): Spec(expect="clean"),
    ("PUT", "/security/redaction"): Spec(
        body=lambda i: {"mode": "block", "keywords": ["a-word"]}, expect="clean"
    ),
    ("POST", "/security/redaction/preview"): Spec(
        body=lambda i: {"text": "order-42, call 13812345678"}, expect="clean"
    ),
    # knowledge bases: B's KB is readable by members, holds one ingested document and one
    # curated answer, all carrying a marker (see ``kb_with_content``)
    ("POST", "/kb"): Spec(  # a group of another tenant cannot be given read access
        body=lambda i: {"name": f"kb-{new_id()}", "read_group_ids": [i.conversation_id]}
    ),
    ("GET", "/kb"): Spec(expect="clean"),
    ("GET", "/kb/{kb_id}"): Spec(),
    ("PATCH", "/kb/{kb_id}"): Spec(body=lambda i: {"name": "pwned", "read_roles": ["visitor"]}),
    ("DELETE", "/kb/{kb_id}"): Spec(),
    ("POST", "/kb/search"): Spec(  # B's passages and curated answer never come back
        body=lambda i: {"query": f"{MARKERS[0]} {MARKERS[1]}", "kb_ids": [i.kb_id]},
        expect="clean",
    ),
    ("POST", "/kb/{kb_id}/reindex"): Spec(body=lambda i: {"force": True}),
    ("POST", "/kb/{kb_id}/documents"): Spec(
        body=lambda i: ({}, {"files": ("pwned.txt", b"pwned", "text/plain")}), multipart=True
    ),
    # 127.0.0.1 is allowed by this module's settings: A's own URL is queued (the job then
    # fails to fetch it, in the background), B's KB is refused before anything is fetched.
    ("POST", "/kb/{kb_id}/documents/url"): Spec(
        body=lambda i: {"url": f"http://127.0.0.1:9/{new_id()}.html"}
    ),
    ("GET", "/kb/{kb_id}/documents"): Spec(),
    ("GET", "/kb/{kb_id}/documents/{doc_id}"): Spec(),
    ("POST", "/kb/{kb_id}/documents/{doc_id}/retry"): Spec(),
    ("DELETE", "/kb/{kb_id}/documents/{doc_id}"): Spec(),
    ("GET", "/kb/{kb_id}/curated"): Spec(),
    ("POST", "/kb/{kb_id}/curated"): Spec(
        body=lambda i: {"questions": ["pwned?"], "answer": "pwned"}
    ),
    ("POST", "/kb/{kb_id}/curated/import"): Spec(
        body=lambda i: ({}, {"file": ("faq.csv", b"question,answer\npwned?,pwned\n", "text/csv")}),
        multipart=True,
    ),
    ("GET", "/kb/{kb_id}/curated/{answer_id}"): Spec(),
    ("PATCH", "/kb/{kb_id}/curated/{answer_id}"): Spec(
        body=lambda i: {"answer": "pwned", "enabled": False}
    ),
    ("DELETE", "/kb/{kb_id}/curated/{answer_id}"): Spec(),
    # tools (B's HTTP tool and MCP server hold sealed secrets carrying a marker)
    ("GET", "/tools"): Spec(expect="clean"),
    ("POST", "/tools/http"): Spec(
        body=lambda i: {"name": tool_name("a"), "url_template": "http://127.0.0.1:9/a"},
        expect="clean",
    ),
    ("GET", "/tools/http"): Spec(expect="clean"),
    ("GET", "/tools/http/{tool_id}"): Spec(),
    ("PATCH", "/tools/http/{tool_id}"): Spec(
        body=lambda i: {"url_template": "http://127.0.0.1:9/pwned", "enabled": False}
    ),
    ("DELETE", "/tools/http/{tool_id}"): Spec(),
    ("POST", "/tools/mcp"): Spec(
        body=lambda i: {"name": tool_name("a"), "transport": "http", "url": "http://127.0.0.1:9/"},
        expect="clean",
    ),
    ("GET", "/tools/mcp"): Spec(expect="clean"),
    ("GET", "/tools/mcp/{server_id}"): Spec(),
    ("PATCH", "/tools/mcp/{server_id}"): Spec(
        body=lambda i: {"url": "http://127.0.0.1:9/pwned", "enabled": False}
    ),
    ("DELETE", "/tools/mcp/{server_id}"): Spec(),
    # A's and B's servers are a real MCP server (the ``mcp_server`` fixture): the control
    # lists its tools, and a call that reached B's server would list them too, with B's
    # server name in every ref.
    ("GET", "/tools/mcp/{server_id}/tools"): Spec(),
    # The support widget's public routes (no credentials: the widget id names the tenant).
    # B's widget requires a visitor token signed with B's secret, so nothing of B is created;
    # its configuration is public by design (B's own pages show it).
    ("GET", "/support/widget/{widget_id}/config"): Spec(auth=False, expect="clean"),
    ("POST", "/support/widget/{widget_id}/sessions"): Spec(
        body=lambda i: {"name": "intruder"}, auth=False
    ),
    # The agent desk (B has a waiting ticket, a note and a canned reply carrying markers,
    # see ``support_desk_of``): canned replies, notes, suggestion, curated save, CSAT, reports.
    # (B's team is refused as a filter and as a canned reply's team: no probing B's teams.)
    ("GET", "/support/canned"): Spec(query=lambda i: {"q": "a", "team_id": i.team_id}),
    ("POST", "/support/canned"): Spec(
        body=lambda i: {
            "shortcut": f"c-{new_id().lower()}",
            "title": "A",
            "text": "a",
            "team_id": i.team_id,
        }
    ),
    ("PATCH", "/support/canned/{canned_id}"): Spec(body=lambda i: {"text": "pwned"}),
    ("DELETE", "/support/canned/{canned_id}"): Spec(),
    ("GET", "/support/conversations/{conversation_id}/notes"): Spec(),
    ("POST", "/support/conversations/{conversation_id}/notes"): Spec(
        body=lambda i: {"text": "pwned"}
    ),
    ("GET", "/support/tickets/{ticket_id}/suggestion"): Spec(),
    ("POST", "/support/tickets/{ticket_id}/curated"): Spec(
        body=lambda i: {"kb_id": i.kb_id, "question": f"q {new_id()}?", "answer": "pwned"}
    ),
    ("POST", "/support/tickets/{ticket_id}/csat"): Spec(
        body=lambda i: {"score": 1, "comment": "pwned"}, control="visitor"
    ),
    ("GET", "/support/reports"): Spec(query=lambda i: {"team_id": i.team_id}),
    # Customer service itself: B's support conversation waits with its ticket; B has a team
    # and an agent named with markers (``build_tenant_b``). A's owner is an agent of A.
    ("GET", "/support/me"): Spec(control="visitor"),  # a visitor's own; A's callers are not
    ("GET", "/support/queue"): Spec(expect="clean"),
    ("GET", "/support/tickets"): Spec(query=lambda i: {"team_id": i.team_id}, expect="clean"),
    ("GET", "/support/tickets/{ticket_id}"): Spec(),
    ("POST", "/support/tickets/{ticket_id}/pick"): Spec(open_ticket=True),
    ("POST", "/support/tickets/{ticket_id}/transfer"): Spec(
        body=lambda i: {"agent_id": i.agent_id, "note": "pwned"}, open_ticket=True
    ),
    ("POST", "/support/tickets/{ticket_id}/resolve"): Spec(open_ticket=True),
    ("GET", "/support/conversations"): Spec(query=lambda i: {"state": "waiting"}, expect="clean"),
    ("GET", "/support/conversations/{conversation_id}/messages"): Spec(),
    ("GET", "/support/conversations/{conversation_id}/transitions"): Spec(),
    ("POST", "/support/conversations/{conversation_id}/takeover"): Spec(),
    ("GET", "/support/agents/me"): Spec(expect="clean"),
    ("PUT", "/support/agents/me"): Spec(body=lambda i: {"status": "away"}, expect="clean"),
    ("GET", "/support/agents"): Spec(expect="clean"),
    ("PUT", "/support/agents/{user_id}"): Spec(
        body=lambda i: {"capacity": 2, "team_ids": [i.team_id]}
    ),
    ("GET", "/support/teams"): Spec(expect="clean"),
    ("POST", "/support/teams"): Spec(  # B's agent cannot join A's team
        body=lambda i: {"name": f"team-{new_id()}", "member_ids": [i.agent_id]}
    ),
    ("PATCH", "/support/teams/{team_id}"): Spec(
        body=lambda i: {"name": "pwned", "holidays": ["2030-01-01"]}
    ),
    ("DELETE", "/support/teams/{team_id}"): Spec(),
    ("GET", "/support/settings"): Spec(expect="clean"),
    ("PUT", "/support/settings"): Spec(body=lambda i: {"default_team_id": i.team_id}),
    # privacy: retention policy, data exports (B's owner has a ready one), erasure
    ("GET", "/privacy/retention"): Spec(expect="clean"),
    ("PUT", "/privacy/retention"): Spec(body=lambda i: {"messages_days": 3650}, expect="clean"),
    ("POST", "/privacy/retention/sweep"): Spec(expect="clean"),
    ("POST", "/privacy/me/export"): Spec(expect="clean"),
    ("GET", "/privacy/exports"): Spec(expect="clean"),
    ("GET", "/privacy/exports/{export_id}"): Spec(),
    ("GET", "/privacy/exports/{export_id}/download"): Spec(),
    ("POST", "/privacy/users/{user_id}/export"): Spec(),
    ("POST", "/privacy/users/{user_id}/erase"): Spec(body=lambda i: {"confirm": i.user_name}),
    # WebSocket: checked by the two gateway tests at the end of this file.
    ("WS", "/ws"): Spec(ws=True),
}

# Body-level refusals inside A's own conversation: B's ids where an id fits.
MIXED: list[tuple[str, str, Body]] = [
    ("POST", "/conversations", lambda i: {"kind": "group", "title": "g", "member_ids": [i.user_id]}),
    ("POST", "/conversations/{conversation_id}/members", lambda i: {"user_ids": [i.user_id]}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"text": "re", "reply_to_id": i.message_id}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"text": "hi @b", "mentions": [i.user_id]}),
    ("GET", "/conversations/{conversation_id}/messages/{message_id}", _no_body),
    ("PATCH", "/conversations/{conversation_id}/messages/{message_id}",
     lambda i: {"text": "pwned"}),
    ("DELETE", "/conversations/{conversation_id}/messages/{message_id}", _no_body),
    ("POST", "/conversations/{conversation_id}/messages/{message_id}/recall", _no_body),
    ("DELETE", "/conversations/{conversation_id}/members/{user_id}", _no_body),
    ("PATCH", "/conversations/{conversation_id}/members/{user_id}", lambda i: {"role": "admin"}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"kind": "file", "file_id": i.file_id}),
    # A's own KB with B's document or curated answer
    ("GET", "/kb/{kb_id}/documents/{doc_id}", _no_body),
    ("POST", "/kb/{kb_id}/documents/{doc_id}/retry", _no_body),
    ("DELETE", "/kb/{kb_id}/documents/{doc_id}", _no_body),
    ("GET", "/kb/{kb_id}/curated/{answer_id}", _no_body),
    ("PATCH", "/kb/{kb_id}/curated/{answer_id}", lambda i: {"answer": "pwned"}),
    ("DELETE", "/kb/{kb_id}/curated/{answer_id}", _no_body),
    # A bot (new, or A's own) given B's knowledge base or provider
    ("POST", "/bots", lambda i: {"name": f"b-{new_id()}", "kb_ids": [i.kb_id]}),
    ("PATCH", "/bots/{bot_id}", lambda i: {"kb_ids": [i.kb_id]}),
    ("PATCH", "/bots/{bot_id}", lambda i: {"provider_ids": [i.provider_id]}),
    # A's own ticket saved to B's knowledge base
    ("POST", "/support/tickets/{ticket_id}/curated",
     lambda i: {"kb_id": i.kb_id, "question": "q?", "answer": "pwned"}),
]  # fmt: skip
# In a MIXED path, these ids are A's own (the container); every other id is B's.
# A's own ticket handed to B's agent or team
MIXED += [
    ("POST", "/support/tickets/{ticket_id}/transfer", lambda i: {"agent_id": i.agent_id}),
    ("POST", "/support/tickets/{ticket_id}/transfer", lambda i: {"team_id": i.team_id}),
]
CONTAINERS = ("conversation_id", "kb_id", "bot_id", "ticket_id")


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path without /api/v1) for every HTTP and WebSocket route under /api/v1."""
    out = set()
    for ctx in iter_route_contexts(app.routes):
        if not (ctx.path or "").startswith(API + "/"):
            continue
        path = ctx.path[len(API) :]
        if isinstance(ctx.original_route, APIRoute):
            out |= {(m, path) for m in (ctx.methods or set()) - {"HEAD", "OPTIONS"}}
        elif isinstance(ctx.original_route, APIWebSocketRoute):
            out.add(("WS", path))
    return out


# -- building the two tenants ------------------------------------------------------------


@dataclass
class World:
    a_owner: Any
    a_tenant: Any
    a_key: str
    b_tenant_id: str
    b_ids: Ids
    b_headers: dict[str, str]
    b_key: str
    b_tokens: list[dict[str, str]]
    a_kb_id: str = ""  # A's own KB with a document and a curated answer
    mcp_url: str = ""  # the real MCP server that A's and B's MCP servers point at


async def build_tenant_b(
    client: httpx.AsyncClient, make_tenant: Any, services: Any, mcp_url: str
) -> tuple:
    b = await make_tenant("tenant-b")
    bea, bob = await b.user("bea", role="owner"), await b.user("bob")
    group = await group_of(client, bea, bob, title=MARKERS[2])
    r = await client.patch(
        f"/conversations/{group}", json={"announcement": MARKERS[3]}, headers=bea.headers
    )
    assert r.status_code == 200, r.text
    msg = await send(client, bea, group, f"{MARKERS[0]} {MARKERS[1]} 我想申请退款")
    await send(client, bob, group, f"reply {MARKERS[0]}", reply_to_id=msg["id"])
    r = await client.post("/conversations", json={"kind": "direct", "user_id": bob.id},
                          headers=bea.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    direct = r.json()["id"]
    await send(client, bob, direct, f"direct {MARKERS[0]}")
    tokens = (await client.get("/auth/tokens", headers=bea.headers)).json()
    b_key = await b.api_key("admin")
    key = {"Authorization": f"Bearer {b_key}"}
    keys = (await client.get("/api-keys", headers=key)).json()
    ids = Ids(
        conversation_id=group, message_id=msg["id"], user_id=bob.id, token_id=tokens[0]["id"],
        api_key_id=keys[0]["id"], direct_id=direct, username="bea", tenant_slug="tenant-b",
    )  # fmt: skip
    ids = replace(ids, file_id=await upload(client, bea, group, f"{MARKERS[0]}.txt"))
    hook, delivery = await webhook_with_a_delivery(client, key, bea, group, f"hooked {MARKERS[0]}")
    ids = replace(ids, webhook_id=hook, delivery_id=delivery, job_id=delivery)
    bot, provider = await bot_with_provider(client, key, MARKERS[0])
    r = await client.put("/security/redaction", headers=key, json={
        "keywords": [MARKERS[1]], "patterns": [{"name": MARKERS[0], "pattern": r"order-\d+"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    ids = replace(ids, bot_id=bot, provider_id=provider)
    owner = Principal(tenant_id=b.id, user_id=bea.id, role="owner")
    kb, doc, answer = await kb_with_content(
        services, owner, f"{MARKERS[0]} {MARKERS[1]}", read_group_ids=[group], ingest=True
    )
    tool, server = await tools_of(client, key, MARKERS[0], mcp_url)
    ids = replace(ids, kb_id=kb, doc_id=doc, answer_id=answer, tool_id=tool, server_id=server)
    widget = await support_widget(client, key, bot, identity_required=True)
    ids = replace(ids, widget_id=widget)
    desk = await support_desk_of(client, services, owner, bea.headers, MARKERS[0], bot_id=bot)
    ids = replace(ids, **{k: v for k, v in desk.items() if k != "visitor_token"})
    team, agent = await support_team_of(client, key, MARKERS[0])
    ids = replace(ids, team_id=team, agent_id=agent)
    ids = replace(ids, export_id=await ready_export(client, bea.headers), user_name="bob")
    return b.id, ids, bea, bob, b_key


async def ready_export(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """An export of the caller's data, built (by the job runner) and ready to download."""
    r = await client.post("/privacy/me/export", headers=headers)
    assert r.status_code == 202, r.text
    for _ in range(400):
        view = (await client.get(f"/privacy/exports/{r.json()['id']}", headers=headers)).json()
        if view["status"] == "ready":
            return str(view["id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"the export never got ready: {view}")


async def support_team_of(
    client: httpx.AsyncClient, headers: dict[str, str], words: str
) -> tuple[str, str]:
    """A support agent (offline: nothing is assigned to them) in a team named ``words``."""
    r = await client.post("/users", json={"username": f"agent-{new_id().lower()}",
                          "role": "agent"}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    agent = r.json()["id"]
    r = await client.post("/support/teams", json={"name": f"{words} team {new_id()}",
                          "member_ids": [agent]}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), str(agent)


async def support_desk_of(
    client: httpx.AsyncClient, services: Any, owner: Principal, headers: dict[str, str],
    words: str, *, bot_id: str | None = None, resolve: bool = False,
) -> dict[str, str]:  # fmt: skip
    """A visitor's support conversation handed to people before the bot answered anything
    (so no reply job runs), with the visitor's question, an agent's internal note and a
    canned reply carrying ``words``. Without ``bot_id``, an extractive support bot (no
    provider, nothing leaves the host) is created. ``headers``: an owner's token. Returns
    support_conversation_id, ticket_id, canned_id and the visitor's token."""
    tenant_id = owner.tenant_id
    if bot_id is None:
        r = await client.post("/bots", json={"name": f"support-{new_id()}", "persona": words},
                              headers=headers)  # fmt: skip
        assert r.status_code == 201, r.text
        await services.support.settings.update(owner, {"bot_user_id": r.json()["user_id"]})
    visitor = await services.users.create_user(
        tenant_id, username=f"visitor-{new_id().lower()}", kind="visitor"
    )
    token = (await services.auth.issue_token(tenant_id, visitor["id"]))["access_token"]
    conv = (await services.support.open_for_visitor(tenant_id, visitor["id"]))["conversation_id"]
    for text in ("转人工", f"{words} how do refunds work?"):
        r = await client.post(f"/conversations/{conv}/messages", json={"text": text},
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert r.status_code == 201, r.text
    ticket = await services.support.ticket_of_conversation(tenant_id, conv)
    assert ticket is not None and ticket["state"] == "waiting"
    r = await client.post(f"/support/conversations/{conv}/notes", json={"text": f"note {words}"},
                          headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post("/support/canned", headers=headers, json={
        "shortcut": f"c-{new_id().lower()}", "title": words, "text": f"canned {words}"})  # fmt: skip
    assert r.status_code == 201, r.text
    canned = r.json()["id"]
    if resolve:
        r = await client.post(f"/support/tickets/{ticket['id']}/resolve", headers=headers)
        assert r.status_code == 200, r.text
    return {"support_conversation_id": conv, "ticket_id": ticket["id"], "canned_id": canned,
            "visitor_token": token}  # fmt: skip


async def support_widget(
    client: httpx.AsyncClient, headers: dict[str, str], bot_id: str, *, identity_required: bool
) -> str:
    """Customer service answered by ``bot_id``; returns the widget id."""
    bot_user = (await client.get(f"/bots/{bot_id}", headers=headers)).json()["user_id"]
    r = await client.put("/support/settings", json={
        "bot_user_id": bot_user, "identity_secret": f"identity-secret-{new_id()}",
        "identity_required": identity_required,
    }, headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return str(r.json()["widget_id"])


async def bot_with_provider(
    client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> tuple[str, str]:
    """A provider (with a key) and a bot that uses it."""
    r = await client.post("/ai/providers", json={"name": f"p-{new_id()}", "kind": "openai",
                          "api_key": f"sk-{name}-0123456789abcdef"}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    provider = r.json()["id"]
    r = await client.post("/bots", json={"name": name, "persona": name,
                          "provider_ids": [provider]}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), str(provider)


async def kb_with_content(
    services: Any, owner: Principal, words: str, *, read_group_ids: list[str], ingest: bool
) -> tuple[str, str, str]:
    """A KB readable by members (and the given groups) with one text document (ingested
    now, or left pending with no job, so that retrying it is allowed) and one curated
    answer, each carrying ``words``."""
    kb = await services.kb.create(owner, name=f"{words} help {new_id()}",
                                  description=f"about {words}", read_roles=["member"],
                                  read_group_ids=read_group_ids)  # fmt: skip
    text = f"{words}: refunds of {words} orders take seven days. 退款七天内到账。"
    submitted = await services.kb_ingest.submit_file(
        owner, kb["id"], f"{words}.txt", text.encode(), enqueue=False
    )
    if ingest:
        await services.kb_ingest.ingest_now(owner, submitted)
    answer = await services.curated.create(
        owner, kb["id"], questions=[words, f"how do {words} refunds work?"],
        answer=f"{words} refunds take seven days.", link="https://help.example/refunds",
    )  # fmt: skip
    return str(kb["id"]), str(submitted.document["id"]), str(answer["id"])


def tool_name(prefix: str) -> str:
    """A fresh tool or MCP server name (a-z, 0-9, _)."""
    return f"{prefix}_{new_id().lower()}"


async def tools_of(
    client: httpx.AsyncClient, headers: dict[str, str], marker: str, mcp_url: str
) -> tuple[str, str]:
    """An HTTP tool and an MCP server, named after ``marker``, each with a sealed secret."""
    r = await client.post("/tools/http", json={
        "name": tool_name(marker), "description": f"{marker} orders",
        "url_template": "http://127.0.0.1:9/orders",
        "auth_header": {"name": "Authorization", "value": f"Bearer {marker}-secret"},
    }, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    tool = str(r.json()["id"])
    r = await client.post("/tools/mcp", json={
        "name": tool_name(marker), "description": f"{marker} files", "transport": "http",
        "url": mcp_url, "headers": {"X-Secret": f"{marker}-secret"},
    }, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    return tool, str(r.json()["id"])


async def upload(client: httpx.AsyncClient, actor: Any, conv: str, name: str) -> str:
    r = await client.post(
        "/files", data={"conversation_id": conv},
        files={"file": (name, f"content of {name}".encode(), "text/plain")}, headers=actor.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def webhook_with_a_delivery(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    actor: Any,
    conv: str,
    text: str,
    *,
    settled: bool = False,
) -> tuple[str, str]:
    """A real webhook (to a closed local port) and a real delivery of one message event.
    ``settled``: wait until the delivery has used up its attempts, so retrying it cannot
    meet it mid-attempt (409)."""  # fmt: skip
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook",
                          "event_types": ["message.new"], "description": text}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    await send(client, actor, conv, text)
    for _ in range(400):  # the dispatcher turns the event into a delivery in the background
        deliveries = (await client.get(f"/webhooks/{hook}/deliveries", headers=headers)).json()
        if deliveries and (not settled or deliveries[0]["status"] == "dead"):
            return hook, deliveries[0]["id"]
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook never got a delivery")


class _Reads:
    """Stands in for ``Ids`` to learn which ids a body or query reads."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getattr__(self, name: str) -> str:
        self.names.add(name)
        return "x"


def ids_needed(path: str, *bodies: Callable[[Ids], Any] | None) -> set[str]:
    """The ids a call needs: its path parameters and what its body and query read."""
    reads = _Reads()
    for body in bodies:
        if body is not None:
            body(cast(Ids, reads))
    path = support_path(path)
    return reads.names | {f.name for f in fields(Ids) if "{" + f.name + "}" in path}


async def a_victims(
    client: httpx.AsyncClient, services: Any, world: World, need: set[str], *,
    settled: bool = False, open_ticket: bool = False,
) -> Ids:  # fmt: skip
    """Fresh A-owned things for one control call (calls may revoke, recall or remove them);
    only those in ``need`` (and what they depend on) are made, since each takes a moment.
    ``settled``: a webhook delivery that has used up its attempts (for retrying it)."""
    t = world.a_tenant
    tok = await services.auth.issue_token(t.id, world.a_owner.id)
    owner = replace(world.a_owner, token=tok["access_token"])
    admin = {"Authorization": f"Bearer {world.a_key}"}
    need = set(need)
    if need & {"message_id", "file_id", "webhook_id", "delivery_id", "job_id"}:
        need.add("conversation_id")
    ids = Ids(username="ann", tenant_slug="tenant-a")
    if need & {"user_id", "conversation_id"}:
        other = await services.users.create_user(t.id, username=f"v-{new_id()}")
        ids = replace(ids, user_id=other["id"])
    if "conversation_id" in need:
        conv = await group_of(client, owner, _actor(other, t.id), title="a group")
        msg = await send(client, owner, conv, "a message")
        file_id = await upload(client, owner, conv, "a.txt") if "file_id" in need else None
        ids = replace(ids, conversation_id=conv, message_id=msg["id"], file_id=file_id)
    if "token_id" in need:
        token = await services.auth.issue_token(t.id, owner.id, device="spare")
        ids = replace(ids, token_id=token["token_id"])
    if "api_key_id" in need:
        key = await services.auth.create_api_key(t.id, name="spare", scopes=["users:read"],
                                                 created_by=None)  # fmt: skip
        ids = replace(ids, api_key_id=key["id"])
    if need & {"webhook_id", "delivery_id", "job_id"}:
        hook, delivery = await webhook_with_a_delivery(
            client, admin, owner, str(ids.conversation_id), "hooked", settled=settled
        )
        ids = replace(ids, webhook_id=hook, delivery_id=delivery, job_id=delivery)
    if need & {"bot_id", "provider_id"}:
        # A bot, and a provider no bot uses (a used one cannot be deleted).
        bot, _ = await bot_with_provider(client, admin, "a bot")
        r = await client.post("/ai/providers", json={"name": f"p-{new_id()}", "kind": "openai"},
                              headers=admin)  # fmt: skip
        ids = replace(ids, bot_id=bot, provider_id=r.json()["id"])
    if need & {"kb_id", "doc_id", "answer_id"}:
        principal = Principal(tenant_id=t.id, user_id=owner.id, role="owner")
        kb, doc, answer = await kb_with_content(
            services, principal, "akb", read_group_ids=[], ingest=False
        )
        ids = replace(ids, kb_id=kb, doc_id=doc, answer_id=answer)
    if need & {"tool_id", "server_id"}:
        tool, server = await tools_of(client, admin, "a", world.mcp_url)
        ids = replace(ids, tool_id=tool, server_id=server)
    if "widget_id" in need:
        bot, _ = await bot_with_provider(client, admin, "a support bot")
        widget = await support_widget(client, admin, bot, identity_required=False)
        ids = replace(ids, widget_id=widget)
    if need & {"support_conversation_id", "ticket_id", "canned_id", "visitor_token"}:
        # Resolved, so that its visitor may rate it (the CSAT control call).
        principal = Principal(tenant_id=t.id, user_id=owner.id, role="owner")
        desk = await support_desk_of(
            client, services, principal, owner.headers, "a", resolve=not open_ticket
        )
        ids = replace(ids, **desk)
    if need & {"team_id", "agent_id"}:
        team, agent = await support_team_of(client, admin, "a")
        ids = replace(ids, team_id=team, agent_id=agent)
    if "export_id" in need:
        ids = replace(ids, export_id=await ready_export(client, owner.headers))
    if "user_name" in need:
        ids = replace(ids, user_name=other["username"])
    return ids


def _actor(user: dict[str, Any], tenant_id: str) -> Any:
    from tests.conftest import Actor

    return Actor(user["id"], user["username"], "", tenant_id, user["role"])


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # A's and B's tools, MCP servers and KB URLs point at 127.0.0.1 (nothing leaves the
    # host). Two delivery attempts: a delivery to retry is dead (settled) sooner.
    return backend_settings(
        backend, request, tmp_path / "data", outbound_allowed_hosts=["127.0.0.1"],
        webhook_max_attempts=2,
    )  # fmt: skip


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[str]:
    """A real MCP server (tests/fakes/mcp_server.py over HTTP, tools ``add`` and ``greet``)
    in its own process, stopped by PID."""
    with serve_http() as url:
        yield url


@pytest.fixture
async def world(
    client: httpx.AsyncClient, make_tenant: Any, services: Any, mcp_server: str
) -> World:
    a = await make_tenant("tenant-a")
    ann = await a.user("ann", role="owner")
    b_tenant_id, ids, bea, bob, b_key = await build_tenant_b(
        client, make_tenant, services, mcp_server
    )
    # A has a KB with content of its own, so a search by A really searches.
    a_owner = Principal(tenant_id=a.id, user_id=ann.id, role="owner")
    a_kb, _, _ = await kb_with_content(
        services, a_owner, "akb 测试", read_group_ids=[], ingest=True
    )
    return World(
        a_owner=ann, a_tenant=a, a_key=await a.api_key("admin"), b_tenant_id=b_tenant_id,
        b_ids=ids, a_kb_id=a_kb, mcp_url=mcp_server,
        b_headers=bea.headers, b_key=b_key,
        b_tokens=[bea.headers, bob.headers],
    )  # fmt: skip


async def tenant_rows(services: Any, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every tenant-scoped table, minus columns that move on their own."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with services.db.read() as s:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            volatile = VOLATILE_COLUMNS | (VOLATILE_JOB_COLUMNS if table.name == "jobs" else set())
            cols = [c for c in table.c if c.name not in volatile]
            rows = (await s.execute(select(*cols).where(table.c.tenant_id == tenant_id))).all()
            out[table.name] = sorted((dict(r._mapping) for r in rows), key=repr)
    return out


# -- the checks --------------------------------------------------------------------------


# Ids that are public by design: a support widget's id is in the company's web pages.
PUBLIC_IDS = {"widget_id"}


def b_secrets(ids: Ids) -> list[str]:
    return [
        v
        for f in fields(ids)
        if (v := getattr(ids, f.name)) and f.name.endswith("id") and f.name not in PUBLIC_IDS
    ]


def assert_nothing_of_b(r: httpx.Response, ids: Ids, where: str) -> None:
    if r.content and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if isinstance(body, dict):
            # Search echoes the query's own words (message search its tokens, KB search
            # the query itself): those are the caller's, not B's.
            body.pop("query_tokens", None)
            body.pop("query", None)
        text = json.dumps(body, ensure_ascii=False)
    else:
        text = r.text
    leaked = [m for m in MARKERS if m.lower() in text.lower()]
    if r.status_code < 300:
        leaked += [i for i in b_secrets(ids) if i in text]
    assert not leaked, f"{where} leaked {leaked}: {text[:500]}"


async def call(
    client: httpx.AsyncClient, method: str, path: str, spec: Spec, ids: Ids,
    headers: dict[str, str], body: Body | None = None,
) -> httpx.Response:  # fmt: skip
    body = body or spec.body or _no_body
    payload = body(ids)
    params = spec.query(ids) if spec.query else None
    headers = headers if spec.auth else {}
    if spec.multipart:
        data, files = payload
        return await client.request(
            method, ids.path(path), params=params, data=data, files=files, headers=headers
        )
    return await client.request(method, ids.path(path), params=params, json=payload,
                                headers=headers)  # fmt: skip


async def test_every_route_is_in_the_isolation_table(app):
    present = app_routes(app)
    missing = sorted(present - ROUTES.keys())
    stale = sorted(ROUTES.keys() - present)
    assert not missing, f"routes with no isolation check; add them to ROUTES: {missing}"
    assert not stale, f"ROUTES lists routes the app no longer has: {stale}"


async def test_a_member_of_tenant_a_reaches_nothing_of_tenant_b(app, client, services, world):
    ids = world.b_ids
    before = await tenant_rows(services, world.b_tenant_id)
    failures: list[str] = []
    for method, path in sorted(k for k in app_routes(app) & ROUTES.keys() if not ROUTES[k].ws):
        spec = ROUTES[(method, path)]
        for name, headers in await callers(services, world):
            r = await call(client, method, path, spec, ids, headers)
            where = f"{method} {path} as {name} -> {r.status_code}"
            # Without auth, no credentials are sent: every caller is the same anonymous one.
            refuse = spec.expect == "refuse" or (name == "A key as B's user" and spec.auth)
            allowed = REFUSED if spec.auth else REFUSED | {401}
            if r.status_code >= 500:
                failures.append(f"{where}: server error {r.text[:200]}")
            elif refuse and r.status_code not in allowed:
                failures.append(f"{where}: expected a refusal, got {r.text[:300]}")
            elif not refuse and name == "owner token" and r.status_code >= 300:
                failures.append(f"{where}: a list or self route should answer 2xx: {r.text[:300]}")
            try:
                assert_nothing_of_b(r, ids, where)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert await tenant_rows(services, world.b_tenant_id) == before, "tenant B's data changed"
    await assert_b_still_works(client, world)


async def test_kb_search_by_a_finds_a_own_passages_and_nothing_of_b(client, services, world):
    """Questions that B's document and curated answer match as well as A's do (or word for
    word), asked over every KB A may read, over B's KB, or over both: A's own passages come
    back, nothing of B."""
    generic = "how long do refunds of orders take? 退款多久到账"
    b_phrasing = f"how do {MARKERS[0]} {MARKERS[1]} refunds work?"  # B's curated question
    b_kb, a_kb = world.b_ids.kb_id, world.a_kb_id
    for name, headers in await callers(services, world):
        if name == "A key as B's user":
            continue  # refused outright (the table above checks it)
        for query in (generic, b_phrasing):
            for kb_ids, searched in ((None, [a_kb]), ([b_kb], []), ([b_kb, a_kb], [a_kb])):
                where = f"POST /kb/search {query!r} as {name} over {kb_ids}"
                r = await client.post("/kb/search", json={"query": query, "kb_ids": kb_ids},
                                      headers=headers)  # fmt: skip
                assert r.status_code == 200, f"{where}: {r.text}"
                assert_nothing_of_b(r, world.b_ids, where)
                found = r.json()
                assert found["searched_kb_ids"] == searched, where
                kbs = {p["kb_id"] for p in found["passages"]}
                assert kbs == set(searched) if query == generic else kbs <= {a_kb}, where


async def test_b_ids_in_bodies_of_a_own_conversation_are_refused(client, services, world):
    before = await tenant_rows(services, world.b_tenant_id)
    failures = []
    # A's own conversation, KB and bot (every call below must be refused, so they stay).
    victims = await a_victims(client, services, world, set(CONTAINERS))
    for method, path, body in MIXED:
        # The container in the path is A's own (the caller owns it); the other ids are B's.
        own = [f for f in CONTAINERS if "{" + f + "}" in path]
        ids = replace(world.b_ids, **{f: getattr(victims, f) for f in own})
        headers = (await callers(services, world))[0][1]
        r = await call(client, method, path, Spec(body=body), ids, headers)
        if r.status_code not in REFUSED:
            failures.append(f"{method} {path} {body(ids)} -> {r.status_code} {r.text[:300]}")
        assert_nothing_of_b(r, ids, f"{method} {path}")
    assert not failures, "\n".join(failures)
    assert await tenant_rows(services, world.b_tenant_id) == before


async def test_every_route_works_for_a_with_a_own_ids(app, client, services, world):
    """The control: the same calls with A's own ids succeed, so the bodies above are valid
    and a refusal with B's ids comes from isolation, not from a malformed request."""
    failures = []
    for method, path in sorted(k for k in app_routes(app) & ROUTES.keys() if not ROUTES[k].ws):
        spec = ROUTES[(method, path)]
        need = ids_needed(path, spec.body, spec.query)
        if spec.control == "visitor":
            need.add("visitor_token")
        victims = await a_victims(client, services, world, need, settled="retry" in path,
                                  open_ticket=spec.open_ticket)  # fmt: skip
        headers = (await callers(services, world))[0][1]
        if spec.control == "visitor":
            headers = {"Authorization": f"Bearer {victims.visitor_token}"}
        r = await call(client, method, path, spec, victims, headers)
        if r.status_code >= 300:
            failures.append(f"{method} {path} -> {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)


async def callers(services: Any, world: World) -> list[tuple[str, dict[str, str]]]:
    """Tenant A's three ways in. The owner gets a fresh token per call, since some calls
    (logout, password change) revoke the token they were made with."""
    tok = await services.auth.issue_token(world.a_tenant.id, world.a_owner.id)
    key = {"Authorization": f"Bearer {world.a_key}"}
    return [
        ("owner token", {"Authorization": f"Bearer {tok['access_token']}"}),
        ("A key as B's user", {**key, "X-Warbler-User": world.b_ids.user_id}),
        ("A key as service", key),
    ]


async def assert_b_still_works(client: httpx.AsyncClient, world: World) -> None:
    ids = world.b_ids
    for headers in world.b_tokens:
        assert (await client.get("/users/me", headers=headers)).status_code == 200
    key = {"Authorization": f"Bearer {world.b_key}"}
    keys = (await client.get("/api-keys", headers=key)).json()
    assert [k["revoked_at"] for k in keys] == [None]
    conv = (await client.get(f"/conversations/{ids.conversation_id}",
                             headers=world.b_headers)).json()  # fmt: skip
    assert (conv["title"], conv["announcement"]) == (MARKERS[2], MARKERS[3])
    history = (await client.get(f"/conversations/{ids.conversation_id}/messages",
                                headers=world.b_headers)).json()  # fmt: skip
    texts = [m["text"] for m in history["messages"] if m["kind"] == "text"]
    assert texts == [
        f"{MARKERS[0]} {MARKERS[1]} 我想申请退款", f"reply {MARKERS[0]}", f"hooked {MARKERS[0]}",
    ]  # fmt: skip
    hooks = (await client.get("/webhooks", headers=key)).json()
    assert [(h["id"], h["active"]) for h in hooks] == [(ids.webhook_id, True)]
    login = await client.post(
        "/auth/login", json={"tenant": "tenant-b", "username": "bea", "password": PASSWORD}
    )
    assert login.status_code == 200


# -- the WebSocket gateway ---------------------------------------------------------------


async def _frames_until(ws: Any, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if done(frame):
                return frames


async def test_websocket_of_a_user_never_carries_an_event_of_tenant_b(tmp_path, server_factory):
    data = tmp_path / "ws-data"
    a = await asyncio.to_thread(seed_tenant, data, "tenant-a", [("ann", "owner"), ("al", "member")])
    b = await asyncio.to_thread(
        seed_tenant, data, "tenant-b", [("bea", "owner"), ("bob", "member")]
    )
    server = server_factory(data_dir=data)
    ann, al = a["users"]["ann"], a["users"]["al"]
    bea, bob = b["users"]["bea"], b["users"]["bob"]

    def auth(u: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {u['token']}"}

    async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
        b_conv = (await http.post("/conversations", json={"kind": "group", "title": MARKERS[2],
                  "member_ids": [bob["id"]]}, headers=auth(bea))).json()["id"]  # fmt: skip
        await http.post(f"/conversations/{b_conv}/messages", json={"text": MARKERS[0]},
                        headers=auth(bea))  # fmt: skip
        a_conv = (await http.post("/conversations", json={"kind": "direct",
                  "user_id": al["id"]}, headers=auth(ann))).json()["id"]  # fmt: skip
        url = server.api.replace("http", "ws", 1) + "/ws?cursor=0"
        async with websockets.connect(url, additional_headers=auth(ann)) as ws:
            seen = await _frames_until(ws, lambda f: f["type"] == "synced")
            # Live: B talks, then A does; events arrive in commit order, so by the time
            # A's own message arrives, any B event would have arrived before it.
            await http.post(f"/conversations/{b_conv}/messages", json={"text": MARKERS[1]},
                            headers=auth(bob))  # fmt: skip
            await http.post(f"/conversations/{b_conv}/typing", json={}, headers=auth(bob))
            await http.post(f"/conversations/{a_conv}/messages", json={"text": "for ann"},
                            headers=auth(al))  # fmt: skip
            seen += await _frames_until(
                ws, lambda f: f.get("event") == "message.new"
                and f["data"]["message"]["text"] == "for ann",
            )  # fmt: skip
    text = json.dumps(seen, ensure_ascii=False)
    assert any(f.get("conversation_id") == a_conv for f in seen), "A's own events arrive"
    for secret in (b_conv, bea["id"], bob["id"], b["tenant_id"], *MARKERS):
        assert secret not in text


async def test_a_token_with_x_warbler_user_is_refused(client, make_tenant):
    ann = await (await make_tenant("tenant-a")).user("ann", role="owner")
    bea = await (await make_tenant("tenant-b")).user("bea", role="owner")
    r = await client.get("/users/me", headers={**ann.headers, "X-Warbler-User": bea.id})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"


async def test_a_websocket_with_a_token_and_x_warbler_user_is_closed(tmp_path, server_factory):
    # A server process of its own (SQLite): not parametrized over the stores.
    data = tmp_path / "ws-data"
    a = await asyncio.to_thread(seed_tenant, data, "tenant-a", [("ann", "owner")])
    b = await asyncio.to_thread(seed_tenant, data, "tenant-b", [("bea", "owner")])
    server = server_factory(data_dir=data)
    url = server.api.replace("http", "ws", 1) + "/ws?cursor=0"
    headers = {"Authorization": f"Bearer {a['users']['ann']['token']}",
               "X-Warbler-User": b["users"]["bea"]["id"]}  # fmt: skip
    async with websockets.connect(url, additional_headers=headers) as ws:
        async with asyncio.timeout(10):
            frame = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
    assert frame["type"] == "error" and frame["error"]["code"] == "invalid_request"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
