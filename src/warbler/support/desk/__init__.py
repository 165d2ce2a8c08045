"""The agent desk: canned replies, internal notes, the bot's suggested reply, saving an
answer as a curated answer, CSAT ratings and reports (``services.support_desk``)."""
