"""CSAT: the visitor rates a resolved ticket 1 to 5, once, with an optional comment.

The rating is stored on the ticket, recorded as a ``support.csat_submitted`` event on the
conversation (the visitor's other devices and the agent see it) and thanked with a short
system message in the conversation's language.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from warbler.clock import utcnow
from warbler.errors import Conflict, Forbidden, InvalidRequest
from warbler.im.events import EventLog
from warbler.im.messages import Draft, append
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models import Conversation
from warbler.store.models_support import SupportConversation, SupportTicket
from warbler.support.desk.access import load_ticket

EVENT = "support.csat_submitted"
MAX_COMMENT_CHARS = 1_000
THANKS = {
    "en": "Thank you for your feedback!",
    "zh": "感谢您的评价！",
}


class AlreadyRated(Conflict):
    code = "already_rated"


class NotResolved(Conflict):
    code = "not_resolved"


def csat_view(ticket: SupportTicket) -> dict[str, Any]:
    return {
        "ticket_id": ticket.id,
        "conversation_id": ticket.conversation_id,
        "score": ticket.csat_score,
        "comment": ticket.csat_comment,
        "rated_at": ticket.csat_at,
    }


class Csat:
    def __init__(self, db: Database, events: EventLog) -> None:
        self.db = db
        self.events = events

    async def submit(
        self, principal: Principal, ticket_id: str, *, score: int, comment: str | None = None
    ) -> dict[str, Any]:
        """Only the ticket's visitor rates it, only once it is resolved, only once."""
        visitor_id = principal.require_user()
        if not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidRequest("score is a whole number from 1 to 5", details={"field": "score"})
        comment = (comment or "").strip() or None
        if comment is not None and len(comment) > MAX_COMMENT_CHARS:
            raise InvalidRequest(
                f"the comment is at most {MAX_COMMENT_CHARS} characters",
                details={"field": "comment", "limit": MAX_COMMENT_CHARS},
            )
        async with self.db.write_then() as (s, after):
            ticket = await load_ticket(s, principal.tenant_id, ticket_id)
            support = await s.scalar(
                select(SupportConversation).where(
                    SupportConversation.tenant_id == principal.tenant_id,
                    SupportConversation.conversation_id == ticket.conversation_id,
                )
            )
            if support is None or support.visitor_id != visitor_id:
                raise Forbidden(
                    "only the visitor of this ticket can rate it", details={"ticket_id": ticket_id}
                )
            if ticket.csat_score is not None:
                raise AlreadyRated(
                    "this ticket was already rated",
                    details={"ticket_id": ticket_id, "score": ticket.csat_score},
                )
            if ticket.state != "resolved":
                raise NotResolved(
                    "a ticket can be rated once it is resolved",
                    details={"ticket_id": ticket_id, "state": ticket.state},
                )
            now = utcnow()
            # Guarded on "not rated yet": of two concurrent ratings exactly one lands.
            done = await s.execute(
                update(SupportTicket)
                .where(SupportTicket.id == ticket.id, SupportTicket.csat_score.is_(None))
                .values(csat_score=score, csat_comment=comment, csat_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise AlreadyRated(
                    "this ticket was already rated", details={"ticket_id": ticket_id}
                )
            view = {**csat_view(ticket), "score": score, "comment": comment, "rated_at": now}
            await self.events.record(
                s, after, tenant_id=principal.tenant_id, type=EVENT,
                data={"conversation_id": ticket.conversation_id, "ticket_id": ticket.id,
                      "score": score, "comment": comment},
                conversation_id=ticket.conversation_id, actor_id=visitor_id,
            )  # fmt: skip
            conv = await s.get(Conversation, ticket.conversation_id)
            assert conv is not None
            language = "zh" if (support.locale or "").startswith("zh") else "en"
            await append(
                s, after, self.events, conv, sender_id=None,
                draft=Draft(kind="system", text=THANKS[language], data={"support": {
                    "state": support.state, "ticket_id": ticket.id, "reason": ticket.reason,
                    "event": "csat_thanks", "score": score,
                }}),
            )  # fmt: skip
        return view
