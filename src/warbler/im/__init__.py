"""The instant-messaging domain: tenants, users, conversations, messages, receipts, presence."""
