"""asyncio helpers the node's background loops share.

Why not ``asyncio.wait_for``: on Python 3.11 a cancellation that arrives in the same loop
turn as the awaited thing completes is swallowed — ``wait_for`` returns the result instead of
raising. A loop stopped by cancelling its task then runs on, and the ``stop`` that awaits it
waits forever. ``asyncio.timeout`` counts cancellations and never loses one.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

# How long ``cancel_and_wait`` waits for cancelled tasks before it gives up on them.
STOP_GRACE_SECONDS = 5.0


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait at most ``seconds`` for ``event``; True if it was set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(
    *tasks: asyncio.Task[object] | None, grace: float = STOP_GRACE_SECONDS
) -> None:
    """Cancel ``tasks`` and wait for them to end, at most ``grace`` seconds: a task that
    will not end is logged and left behind rather than hanging the caller's shutdown."""
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    if not live:
        return
    _, pending = await asyncio.wait(live, timeout=grace)
    for task in live:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("task %s ended with %r", task.get_name(), task.exception())
    for task in pending:
        log.error("task %s did not stop within %g s; leaving it", task.get_name(), grace)
