"""Customer service in the demo tenant (``warbler demo``): the widget ``demo`` (served on the
demo company page ``/widget/demo``), the demo bot as its support bot, a team that is always
open, two agents and a few canned replies. Idempotent: a tenant that has support settings
already is left alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.services import Services
from warbler.store.models import User
from warbler.store.models_support import (
    CannedReply,
    SupportAgent,
    SupportSettings,
    SupportTeam,
    SupportTeamMember,
)

WIDGET_ID = "demo"
DEMO_PAGE = "/widget/demo"
TEAM = "Support 客服"
AGENTS = [
    # username, display name (they sign in with the demo password, like every demo user)
    ("agent1", "Mia Zhou 周米娅"),
    ("agent2", "Leo Sun 孙立"),
]
CANNED = [
    ("hello", "Greeting 问候",
     "Hi, thanks for waiting! I'm here to help. 您好，感谢您的耐心等待，很高兴为您服务！"),
    ("refund", "Refund timing 退款时效",
     "Refunds go back to your original payment method within 5 business days after our "
     "warehouse receives the item. 仓库收到退货后 5 个工作日内原路退款。"),
    ("bye", "Closing 结束语",
     "Is there anything else I can help with? If not, have a great day! "
     "请问还有其他可以帮您的吗？祝您生活愉快！"),
]  # fmt: skip
WIDGET_TITLE = {"en": "Brightleaf support", "zh": "明叶家居客服"}
WIDGET_GREETING = {
    "en": "Hi! I'm the Brightleaf assistant. Ask me about orders, delivery, returns or your "
    "account. Type “talk to a human” for a person.",
    "zh": "您好！我是明叶家居智能助手，可以解答订单、配送、退换货和账户问题。输入“转人工”联系人工客服。",
}
ESCALATE = ["lawyer", "legal action", "律师", "起诉"]


async def seed_support(svc: Services, tenant_id: str, password: str, *, bot_username: str) -> bool:
    """Set up customer service in the demo tenant, with the bot ``bot_username`` answering;
    False if it was set up already (or the bot is missing)."""
    async with svc.db.read() as s:
        if await s.get(SupportSettings, tenant_id) is not None:
            return False
        taken = await s.scalar(
            select(SupportSettings).where(SupportSettings.widget_id == WIDGET_ID)
        )
        bot_user_id = await s.scalar(
            select(User.id).where(User.tenant_id == tenant_id, User.username == bot_username)
        )
    if taken is not None or bot_user_id is None:
        return False  # another tenant holds the demo widget id, or there is no bot
    agent_ids = [await _agent(svc, tenant_id, name, display, password) for name, display in AGENTS]
    now = utcnow()
    team_id = new_id()
    async with svc.db.write() as s:
        s.add(SupportTeam(
            id=team_id, tenant_id=tenant_id, name=TEAM, timezone="Asia/Shanghai",
            office_hours={},  # always open
            holidays=[], sla_first_response_seconds=300, sla_resolution_seconds=4 * 3600,
            created_at=now, updated_at=now,
        ))  # fmt: skip
        await s.flush()
        for user_id in agent_ids:
            s.add(SupportTeamMember(team_id=team_id, user_id=user_id, tenant_id=tenant_id))
            s.add(SupportAgent(
                user_id=user_id, tenant_id=tenant_id, capacity=3, status="offline",
                last_assigned_at=None, status_changed_at=now,
            ))  # fmt: skip
        s.add(SupportSettings(
            tenant_id=tenant_id, widget_id=WIDGET_ID, bot_user_id=bot_user_id,
            default_team_id=team_id, escalate_keywords=ESCALATE, negative_words=[],
            escalate_on_no_answer=True, widget_title=WIDGET_TITLE,
            widget_greeting=WIDGET_GREETING, widget_color="#23472b", allowed_origins=[],
            identity_secret_sealed=None, identity_required=False, created_at=now, updated_at=now,
        ))  # fmt: skip
        for shortcut, title, text in CANNED:
            s.add(CannedReply(
                id=new_id(), tenant_id=tenant_id, team_id=None, shortcut=shortcut, title=title,
                text=text, created_by=None, created_at=now, updated_at=now,
            ))  # fmt: skip
    return True


async def _agent(svc: Services, tenant_id: str, username: str, display: str, password: str) -> str:
    async with svc.db.read() as s:
        found = await s.scalar(
            select(User.id).where(User.tenant_id == tenant_id, User.username == username)
        )
    if found is not None:
        return str(found)
    user: dict[str, Any] = await svc.users.create_user(
        tenant_id, username=username, display_name=display, kind="human", role="agent",
        password=password,
    )  # fmt: skip
    return str(user["id"])
