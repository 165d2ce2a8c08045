"""Graceful shutdown: uvicorn's server with a drain phase between the signal and the stop.

On SIGTERM (or Ctrl-C) the node at once answers ``/ready`` with 503, keeps serving for
``shutdown_drain_seconds`` so the load balancer takes it out of rotation, then closes every
WebSocket with 1012 (clients reconnect to another node and resume from their cursor) and lets
uvicorn finish in-flight requests and run the lifespan shutdown (background workers stop;
unfinished jobs are reclaimed by lease expiry). This must happen on the signal: uvicorn waits
for open connections *before* the lifespan shutdown, so closing sockets there would be too late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

import uvicorn

from warbler.aio import wait_event
from warbler.delivery.hub import Hub
from warbler.ops.readiness import Readiness

log = logging.getLogger("warbler.shutdown")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long the gateways get to send their own close frames before uvicorn cuts the sockets
# (uvicorn would send 1012 too, but without our reason and without the presence update).
CLOSE_WAIT_SECONDS = 3.0


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` that drains before it stops. A second signal skips the rest of the
    drain; a third Ctrl-C forces the exit, as in plain uvicorn."""

    def __init__(
        self, config: uvicorn.Config, *, readiness: Readiness, hub: Hub, drain_seconds: float
    ) -> None:
        super().__init__(config)
        self.readiness = readiness
        self.hub = hub
        self.drain_seconds = drain_seconds
        self._exit_requested = False
        self._hurry = False
        self._hurried = asyncio.Event()  # set from on_tick: a signal handler must not
        self._drain_task: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs as a signal handler: set flags only; the event loop acts on them in on_tick.
        if not self.started or self._hurry:
            super().handle_exit(sig, frame)  # starting up, or asked three times: uvicorn's way
            return
        self.readiness.begin_draining()
        if self._exit_requested:
            self._hurry = True
        self._exit_requested = True

    async def on_tick(self, counter: int) -> bool:
        if self._exit_requested and self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="drain")
        if self._hurry:
            self._hurried.set()
        return await super().on_tick(counter)

    async def _drain(self) -> None:
        log.warning("shutting down: not ready; draining for %g s", self.drain_seconds)
        await wait_event(self._hurried, self.drain_seconds)
        devices = self.hub.device_count
        self.hub.close_all("shutdown")
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        # The hub has no "all gone" event to wait on; it empties within milliseconds.
        while self.hub.device_count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        log.warning("closed %d WebSocket(s) with 1012; finishing in-flight requests", devices)
        self.should_exit = True

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the captured signal after a graceful stop, so the process would
        # die "killed by SIGTERM"; a node that shut down cleanly exits 0 instead.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
