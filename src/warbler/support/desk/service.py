"""``services.support_desk``: the agent's tools around a support conversation, in one place.

Each part is its own module; this facade only builds them::

    await services.support_desk.canned.list(principal, team_id=..., q="退款")
    await services.support_desk.notes.add(principal, conversation_id, "called them back")
    await services.support_desk.suggestions.suggest(principal, ticket_id)
    await services.support_desk.curated.save(principal, ticket_id, kb_id=...)
    await services.support_desk.csat.submit(visitor, ticket_id, score=5)
    await services.support_desk.reports.get(principal, since=..., until=..., team_id=...)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from warbler.support.desk.canned import CannedReplies
from warbler.support.desk.csat import Csat
from warbler.support.desk.curated import CuratedSaves
from warbler.support.desk.notes import Notes
from warbler.support.desk.reports import Reports
from warbler.support.desk.suggestion import Suggestions

if TYPE_CHECKING:
    from warbler.services import Services


class DeskService:
    def __init__(self, services: Services) -> None:
        self.canned = CannedReplies(services.db)
        self.notes = Notes(services.db, services.audit)
        self.suggestions = Suggestions(services)
        self.curated = CuratedSaves(services)
        self.csat = Csat(services.db, services.events)
        self.reports = Reports(services.db)
