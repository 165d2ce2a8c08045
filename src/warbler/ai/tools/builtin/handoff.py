"""``handoff``: ask for a human agent to take over the conversation.

Records the durable event ``support.handoff_requested`` and, in the same transaction, hands
the conversation over: a support conversation gets a ticket in the customer-service queue
(``services.support``; its notice tells the visitor their place or when a person will reply),
any other conversation a system message saying an agent was asked to join. The result carries
``handoff``, so the reply engine ends the bot's turn.
"""

from __future__ import annotations

from typing import Any

from warbler.ai.providers.base import ToolSpec
from warbler.ai.tools.base import ToolContext, ToolError, ToolResult
from warbler.ai.tools.permissions import SUPPORT_HANDOFF
from warbler.errors import NotFound
from warbler.im.membership import load_for_member
from warbler.im.messages import Draft, append

EVENT = "support.handoff_requested"
REASONS = (
    "user_requested",  # the user asked for a person
    "no_answer",  # nothing grounded to answer with
    "repeated_failure",  # the bot failed to help several times
    "negative_sentiment",  # the user is upset
    "sensitive_topic",  # a topic the bot must not handle (refunds, complaints, legal)
    "other",
)
# The tool's reasons and customer service's reason codes (warbler/support/states.py) agree;
# the engine's own hand-off after a provider failure records "bot_error".
SUPPORT_REASONS = {r: r for r in (*REASONS, "bot_error")}
NOTICE = "A human agent has been asked to join this conversation."


class Handoff:
    ref = "handoff"
    permission: str | None = SUPPORT_HANDOFF
    allowed_roles: tuple[str, ...] | None = None
    timeout_seconds: float | None = None
    spec = ToolSpec(
        name="handoff",
        description="Hand the conversation over to a human agent. Use it when the user asks "
        "for a person, when you cannot answer from the knowledge base, or when the user is "
        "upset. After calling it, tell the user briefly that a colleague will take over.",
        parameters={
            "type": "object",
            "properties": {
                "reason": {"type": "string", "enum": list(REASONS)},
                "summary": {
                    "type": "string",
                    "maxLength": 500,
                    "description": "One or two sentences for the agent: what the user needs.",
                },
            },
            "required": ["reason"],
            "additionalProperties": False,
        },
    )

    def __init__(self, system_reason: str | None = None) -> None:
        # Set by the engine, not the model: the reason recorded whatever the call says.
        self.system_reason = system_reason

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        if ctx.conversation_id is None:
            raise ToolError("no_conversation", "a hand-off needs a conversation to hand over")
        services = ctx.services
        tenant_id = ctx.principal.tenant_id
        reason = self.system_reason or args["reason"]
        summary = (args.get("summary") or "").strip() or None
        data = {
            "conversation_id": ctx.conversation_id,
            "reason": reason,
            "summary": summary,
            "requested_by": ctx.principal.user_id,
            "bot_user_id": ctx.bot_user_id,
        }
        async with services.db.write_then() as (s, after):
            try:
                conv, _ = await load_for_member(s, tenant_id, ctx.conversation_id, ctx.bot_user_id)
            except NotFound:
                raise ToolError(
                    "no_conversation", "the bot is not in this conversation any more"
                ) from None
            if conv.kind == "support":
                ticket = await services.support.escalate_in(
                    s, after, tenant_id, conv.id, SUPPORT_REASONS.get(reason, "other"),
                    actor_id=ctx.bot_user_id, summary=summary,
                    detail={"source": "handoff_tool"},
                )  # fmt: skip
                data["ticket_id"] = ticket.id if ticket is not None else None
                data["message_id"] = None
            else:
                notice = await append(
                    s, after, services.events, conv, sender_id=None,
                    draft=Draft(kind="system", text=NOTICE,
                                data={"event": EVENT, "actor_id": ctx.bot_user_id,
                                      "reason": reason}),
                )  # fmt: skip
                data["message_id"] = notice["id"]
            await services.events.record(
                s, after, tenant_id=tenant_id, type=EVENT, data=data,
                conversation_id=conv.id, actor_id=ctx.bot_user_id,
            )  # fmt: skip
        return ToolResult.ok(
            {"handed_off": True, "reason": reason, "notice": NOTICE},
            handoff={"reason": reason, "summary": summary},
            data={"reason": reason, "message_id": data["message_id"]},
        )
