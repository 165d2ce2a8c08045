"""One timer for the whole node sends the heartbeat frame to every device, instead of a
sleeping task per socket (which cost memory and wake-ups at 10k connections)."""

from __future__ import annotations

import asyncio

from warbler.aio import cancel_and_wait
from warbler.delivery.hub import Hub


class Heartbeat:
    def __init__(self, hub: Hub, every_seconds: float) -> None:
        self.hub = hub
        self.every = every_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ws-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.hub.broadcast_control({"type": "heartbeat"})
