"""A tenant running customer service, for the support tests: a support bot answering from
demo help-centre pages (the real extractive bot, no model), agents and visitors in a line.

    w = await support_world(services, make_tenant)
    a1 = await w.agent("a1", capacity=1)            # online
    v, conv = await w.visitor("v1", locale="zh")    # a visitor and their support conversation
    await w.say(client, v, conv, "转人工")
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from tests.conftest import Actor, Tenant
from tests.integration.kb_seed import demo_kb
from tests.integration.test_ai_replies import finished_reply, messages_of
from warbler.ai.trigger import REPLY_KIND
from warbler.im.principal import Principal
from warbler.services import Services
from warbler.store.models_support import SupportConversation, SupportTicket, SupportTransition

DEMO_PAGES = ("returns-refunds.md", "zh-returns-refunds.md", "shipping.md")
REFUND_QUESTION = "How many days do I have to return an item?"


@dataclass
class SupportWorld:
    services: Services
    tenant: Tenant
    owner: Actor
    admin: Principal
    bot: dict[str, Any]
    agents: dict[str, Actor] = field(default_factory=dict)

    @property
    def tenant_id(self) -> str:
        return self.tenant.id

    async def agent(
        self, name: str, *, capacity: int = 1, status: str = "online", role: str = "agent"
    ) -> Actor:
        actor = await self.tenant.user(name, role=role)
        principal = Principal(tenant_id=self.tenant_id, user_id=actor.id, role=role)
        await self.services.support.agents.update(self.admin, actor.id, capacity=capacity)
        await self.services.support.agents.set_status(principal, status)
        self.agents[name] = actor
        return actor

    async def visitor(self, name: str, *, locale: str = "en") -> tuple[Actor, str]:
        actor = await self.tenant.user(name, kind="visitor")
        view = await self.services.support.open_for_visitor(self.tenant_id, actor.id, locale=locale)
        return actor, str(view["conversation_id"])

    async def say(
        self, client: httpx.AsyncClient, who: Actor, conv: str, text: str
    ) -> dict[str, Any]:
        r = await client.post(
            f"/conversations/{conv}/messages", json={"text": text}, headers=who.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def ask_bot(
        self, client: httpx.AsyncClient, who: Actor, conv: str, text: str
    ) -> dict[str, Any]:
        """Send and wait for the bot's finished reply."""
        sent = await self.say(client, who, conv, text)
        return await finished_reply(client, who, conv, sent["id"], within=30)

    async def state(self, conv: str) -> SupportConversation:
        async with self.services.db.read() as s:
            found = await s.get(SupportConversation, conv)
        assert found is not None
        return found

    async def ticket(self, conv: str) -> SupportTicket:
        async with self.services.db.read() as s:
            found = await s.scalar(
                select(SupportTicket)
                .where(SupportTicket.conversation_id == conv)
                .order_by(SupportTicket.queued_at.desc(), SupportTicket.id.desc())
                .limit(1)
            )
        assert found is not None, f"no ticket in {conv}"
        return found

    async def transitions(self, conv: str) -> list[tuple[str, str, str]]:
        async with self.services.db.read() as s:
            rows = (
                await s.scalars(
                    select(SupportTransition)
                    .where(SupportTransition.conversation_id == conv)
                    .order_by(SupportTransition.id)
                )
            ).all()
        return [(r.from_state, r.to_state, r.reason) for r in rows]

    async def quiet(self, within: float = 30.0) -> None:
        """Wait until no reply job is pending or running."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            jobs = await self.services.jobs.queue.list(self.tenant_id, kind=REPLY_KIND)
            if all(j.status in ("done", "dead") for j in jobs):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("reply jobs still running")


async def support_world(
    services: Services, make_tenant: Any, *, slug: str = "shop", **settings: Any
) -> SupportWorld:
    """A tenant with an owner, a knowledge base of demo help pages, an extractive support bot
    on it, and support settings naming that bot (plus ``settings`` changes)."""
    tenant = await make_tenant(slug)
    owner = await tenant.user("olive", role="owner")
    admin = Principal(tenant_id=tenant.id, user_id=owner.id, role="owner")
    kb_id, _ = await demo_kb(services, tenant.id, *DEMO_PAGES)
    bot = await services.bots.create(
        admin, {"name": "Helper", "persona": "You are the shop's assistant.", "kb_ids": [kb_id]}
    )
    await services.support.settings.update(admin, {"bot_user_id": bot["user_id"], **settings})
    return SupportWorld(services, tenant, owner, admin, bot)


def notices(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The support notices (system messages with ``data.support``) among ``messages``."""
    return [m for m in messages if m["kind"] == "system" and (m["data"] or {}).get("support")]


def bot_messages(messages: list[dict[str, Any]], bot_user_id: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["sender_id"] == bot_user_id]


__all__ = ["SupportWorld", "bot_messages", "messages_of", "notices", "support_world"]
