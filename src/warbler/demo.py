"""The demo tenant that ``warbler demo`` (and ``make run``) seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from warbler.im.messages import Draft
from warbler.im.principal import Principal
from warbler.services import Services
from warbler.support.demo import AGENTS as SUPPORT_AGENTS
from warbler.support.demo import seed_support

TENANT = "demo"
# The bilingual help-center of a fictional shop, shipped in the source tree (examples/kb).
DEMO_KB = Path(__file__).resolve().parents[2] / "examples" / "kb"
KB_NAME = "Help Center 帮助中心"
USERS = [
    # username, display name, kind, role
    ("alice", "Alice Chen 陈爱丽", "human", "owner"),
    ("bob", "Bob Li 李博", "human", "agent"),
    ("carol", "Carol Wang 王卡罗", "human", "member"),
]
BOT_USERNAME = "assistant"
BOT = {
    "name": "Warbler Assistant",
    "description": "Answers from the company's knowledge base. 根据公司知识库回答问题。",
    # No provider: it answers extractively (curated answers, knowledge base) with no key.
    "persona": "You are Warbler Assistant, the company's helpful assistant. Answer briefly, "
    "in the language of the question, only from the knowledge base; say so when it does not "
    "know. 你是公司的智能助手，用提问的语言简洁作答，只依据知识库回答。",
}
BOT_GREETING = (
    "Hi, I'm Warbler Assistant. Ask me anything about the company. "
    "你好，我是 Warbler 小助手，有问题尽管问我。"
)
GROUP_MESSAGES = [
    ("alice", "Welcome to Warbler! 欢迎来到 Warbler。"),
    ("bob", "客户说想申请退款，我来跟进。"),
    ("carol", "The refund policy is in the handbook, section 3."),
]


async def seed(svc: Services, password: str) -> dict[str, Any]:
    listing = [(u, role) for u, _, _, role in USERS] + [(BOT_USERNAME, "bot")]
    listing += [(username, "agent") for username, _ in SUPPORT_AGENTS]
    existing = await svc.users.tenant_by_slug(TENANT)
    if existing is not None:
        # Customer service came later than the demo tenant: add it to an older one.
        await seed_support(svc, existing.id, password, bot_username=BOT_USERNAME)
        return {"tenant": TENANT, "users": listing, "created": False}
    tenant = await svc.users.create_tenant(slug=TENANT, name="Demo Company 演示公司")
    ids: dict[str, str] = {}
    for username, display, kind, role in USERS:
        user = await svc.users.create_user(
            tenant["id"], username=username, display_name=display, kind=kind, role=role,
            password=password if kind == "human" else None,
        )  # fmt: skip
        ids[username] = user["id"]

    def as_user(name: str) -> Principal:
        return Principal(tenant_id=tenant["id"], user_id=ids[name], role=dict(
            (u, r) for u, _, _, r in USERS)[name])  # fmt: skip

    kb_ids = await _demo_knowledge(svc, as_user("alice"))
    bot = await svc.bots.create(as_user("alice"), {**BOT, "kb_ids": kb_ids}, username=BOT_USERNAME)
    ids[BOT_USERNAME] = bot["user_id"]
    # Customer service: the widget "demo" on the demo page /widget/demo, agents, a team.
    await seed_support(svc, tenant["id"], password, bot_username=BOT_USERNAME)
    as_bot = Principal(tenant_id=tenant["id"], user_id=bot["user_id"], role="bot", kind="bot")

    group = await svc.conversations.create_group(
        as_user("alice"), title="General 综合", member_ids_=list(ids.values())
    )
    for i, (name, text) in enumerate(GROUP_MESSAGES):
        await svc.messages.send(
            as_user(name), group["id"], Draft(text=text, client_msg_id=f"demo-{i}")
        )
    direct, _ = await svc.conversations.open_direct(as_user("alice"), ids["bob"])
    await svc.messages.send(
        as_user("alice"), direct["id"], Draft(text="Bob, can you take the refund case?")
    )
    # The demo user's direct chat with the bot; the bot's greeting triggers no reply.
    bot_dm, _ = await svc.conversations.open_direct(as_user("alice"), bot["user_id"])
    await svc.messages.send(as_bot, bot_dm["id"], Draft(text=BOT_GREETING))
    key = await svc.auth.create_api_key(
        tenant["id"], name="demo admin key", scopes=["admin"], created_by=ids["alice"]
    )
    return {"tenant": TENANT, "users": listing, "created": True, "api_key": key["key"]}


async def _demo_knowledge(svc: Services, admin: Principal) -> list[str]:
    """The demo help center (documents + curated answers), readable by everyone incl.
    visitors; nothing when the source tree's ``examples/kb`` is not there (an installed
    wheel): the bot then says it does not know."""
    docs = DEMO_KB / "docs"
    if not docs.is_dir():
        return []
    kb = await svc.kb.create(
        admin, name=KB_NAME, description="Demo shop: returns, shipping, accounts, pricing.",
        read_roles=["member", "agent", "visitor"],
    )  # fmt: skip
    for path in sorted(docs.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            submitted = await svc.kb_ingest.submit_file(
                admin, kb["id"], path.name, path.read_bytes(), enqueue=False
            )
            await svc.kb_ingest.ingest_now(admin, submitted)
    faq = DEMO_KB / "faq.csv"
    if faq.is_file():
        await svc.curated.import_file(admin, kb["id"], faq.read_bytes(), "csv")
    return [str(kb["id"])]
