"""Customer service: support conversations, hand-off to people, queue, assignment, office hours.

``service.py`` is the facade the rest of the code calls (``services.support``); ``desk/``
(agent tools, CSAT, reports) and ``widget/`` (the visitor widget) build on it.
"""
