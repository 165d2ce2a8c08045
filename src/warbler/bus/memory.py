"""In-process event bus for the embedded single-node default."""

from __future__ import annotations

import inspect
import logging

from warbler.bus.base import BusEvent, Handler, ReconnectCallback

log = logging.getLogger(__name__)


class MemoryBus:
    """Calls subscribers synchronously, in publish order; handlers must not block."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def publish(self, event: BusEvent) -> None:
        for handler in self._handlers:
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    raise TypeError("MemoryBus handlers must be synchronous")
            except Exception:
                log.exception("event handler failed for %s", event.type)

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Never called: an in-process bus cannot lose its connection."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._handlers.clear()
