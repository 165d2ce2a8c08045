"""The Warbler Python SDK: REST calls, live events that resume by cursor, async and blocking."""

from warbler_client.client import AsyncClient
from warbler_client.errors import WarblerAPIError, WarblerConnectionError, WarblerError
from warbler_client.stream import EventStream
from warbler_client.sync import Client, SyncEventStream

__all__ = [
    "AsyncClient",
    "Client",
    "EventStream",
    "SyncEventStream",
    "WarblerAPIError",
    "WarblerConnectionError",
    "WarblerError",
]
