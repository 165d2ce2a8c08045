"""The demo tenant that ``warbler demo`` (and ``make run``) seeds."""

from __future__ import annotations

from typing import Any

from warbler.im.messages import Draft
from warbler.im.principal import Principal
from warbler.services import Services

TENANT = "demo"
USERS = [
    # username, display name, kind, role
    ("alice", "Alice Chen 陈爱丽", "human", "owner"),
    ("bob", "Bob Li 李博", "human", "agent"),
    ("carol", "Carol Wang 王卡罗", "human", "member"),
    ("assistant", "Warbler Assistant 小助手", "bot", "bot"),
]
GROUP_MESSAGES = [
    ("alice", "Welcome to Warbler! 欢迎来到 Warbler。"),
    ("bob", "客户说想申请退款，我来跟进。"),
    ("carol", "The refund policy is in the handbook, section 3."),
]


async def seed(svc: Services, password: str) -> dict[str, Any]:
    listing = [(u, role) for u, _, _, role in USERS]
    if await svc.users.tenant_by_slug(TENANT) is not None:
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
    key = await svc.auth.create_api_key(
        tenant["id"], name="demo admin key", scopes=["admin"], created_by=ids["alice"]
    )
    return {"tenant": TENANT, "users": listing, "created": True, "api_key": key["key"]}
