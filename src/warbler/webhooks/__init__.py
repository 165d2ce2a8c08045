"""Outgoing webhooks: subscriptions, turning the event log into deliveries, signed POSTs."""
