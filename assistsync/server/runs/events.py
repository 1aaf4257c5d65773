"""Run events as the streaming API names them, and the subscriptions that carry them.

The engine publishes every change of a run as ``(event, data)`` — ``thread.run.queued`` with
the run, ``thread.message.delta`` with a delta object, … — to the subscriptions of that run.
A streaming response is a subscription drained onto the socket; the engine never waits on a
subscriber (queues are unbounded and ``put`` never blocks), so a slow or vanished client cannot
stall or corrupt a run.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]
Event = tuple[str, str]
"""``(event name, data as JSON text)``: serialised once, however many subscribers."""

ENDS_STREAM = frozenset(
    {
        "thread.run.requires_action",
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
    }
)
"""After these the run waits for the client or is over: the stream ends with ``done``."""


class Subscription:
    """The events of one run (and of the thread created with it), in publication order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.closed = False

    def put(self, event: Event) -> None:
        """Add an event (never blocks)."""
        self._queue.put(event)

    def end(self) -> None:
        """No more events will come."""
        self._queue.put(None)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None at the end. Raises :class:`queue.Empty` after ``timeout``."""
        return self._queue.get(timeout=timeout)

    def __iter__(self) -> Iterator[Event]:
        while (event := self.get()) is not None:
            yield event
