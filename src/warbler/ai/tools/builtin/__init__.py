"""Tools every bot can be given: knowledge-base search, colleague lookup, hand-off to a human."""

from __future__ import annotations

from warbler.ai.tools.builtin.colleagues import LookupColleague
from warbler.ai.tools.builtin.handoff import Handoff
from warbler.ai.tools.builtin.kb_search import KbSearch

__all__ = ["Handoff", "KbSearch", "LookupColleague"]
