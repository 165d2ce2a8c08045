"""Server-sent events, decoded line by line (the streaming format of every model vendor)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None  # the ``event:`` field (Anthropic names its events; OpenAI does not)
    data: str


class SseDecoder:
    """Feed it lines without their newline; it returns an event when one is complete.

    Follows the spec (``:`` comments, ``event:``/``data:`` fields, multi-line data joined with
    newlines, a blank line ends an event) and tolerates vendors that leave out the blank line
    between events: a new ``data:`` line after a complete JSON value starts a new event.
    """

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        line = line.rstrip("\r")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            ready = None
            if self._data and _complete(self._data) and _starts_value(value):
                ready = self._dispatch()
            self._data.append(value)
            return ready
        if name == "event":
            ready = self._dispatch() if self._data else None
            self._event = value
            return ready
        return None  # id:, retry: and unknown fields mean nothing to a model stream

    def flush(self) -> SseEvent | None:
        """The event left when the stream ended without a final blank line."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        if not self._data:
            self._event = None
            return None
        out = SseEvent(self._event, "\n".join(self._data))
        self._event = None
        self._data = []
        return out


def _complete(data: list[str]) -> bool:
    text = "\n".join(data)
    if text.strip() == "[DONE]":
        return True
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _starts_value(value: str) -> bool:
    head = value.lstrip()
    return head.startswith(("{", "[")) or head == "[DONE]"
