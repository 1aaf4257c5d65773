"""What the runs group needs from the threads and messages groups, as small interfaces.

The engine and the runs endpoints depend on these, not on the other groups' modules, so they
can be tested on their own (``tests/server/runs_testkit.py`` implements :class:`Messages` on a
bare table) and the other groups stay free to arrange their code. :mod:`.conversation` adapts
the server's threads and messages groups to them. Every method runs inside the caller's
transaction (``db``), so a run and the messages it adds commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

Json = dict[str, Any]


class Messages(Protocol):
    """What the engine needs from the messages endpoint group (all calls inside a transaction).

    Messages are returned as their public objects (``thread.message``).
    """

    def thread_messages(self, db: sqlite3.Connection, thread_id: str) -> list[Json]:
        """Every message of the thread, oldest first."""
        ...

    def create_assistant_message(
        self, db: sqlite3.Connection, thread_id: str, assistant_id: str, run_id: str, now: int
    ) -> Json:
        """A new ``in_progress`` assistant message with empty content."""
        ...

    def finish_assistant_message(
        self,
        db: sqlite3.Connection,
        message_id: str,
        text: str | None,
        now: int,
        incomplete_reason: str | None,
        annotations: Sequence[Json] = (),
    ) -> Json:
        """Set the text (``None`` keeps it, and its annotations) and end the message:
        ``completed``, or ``incomplete`` with ``incomplete_details.reason`` when a reason is
        given. ``annotations`` (citations) go with a new text."""
        ...


class Threads(Messages, Protocol):
    """Threads and user messages, as the create-run endpoints need them."""

    def require_thread(self, db: sqlite3.Connection, thread_id: str) -> None:
        """A 404 unless the thread exists."""
        ...

    def add_messages(
        self, db: sqlite3.Connection, thread_id: str, items: list[Json], param: str
    ) -> list[Json]:
        """Validate ``items`` (CreateMessageRequest bodies; a 400 names ``param[i]...``) and
        add them to the thread, in order; the messages created."""
        ...

    def create_thread(self, db: sqlite3.Connection, body: Json | None, param: str) -> Json:
        """Validate ``body`` (a CreateThreadRequest, null for an empty thread; a 400 names
        ``param...``) and create the thread with its messages; the thread object."""
        ...
