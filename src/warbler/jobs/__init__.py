"""Durable background jobs: a queue in the database and a runner that leases and retries."""
