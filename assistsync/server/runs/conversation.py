"""The runs group's view of the server's threads and messages groups (:class:`~.ports.Threads`).

A thin adapter: validation, inserts and updates are the threads and messages groups' own
functions; this module only names them the way the engine asks, and places request errors
under the run request's field (``additional_messages[0].content``, ``thread.metadata``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from assistsync.server import messages, threads
from assistsync.server.db import Json
from assistsync.server.framework.errors import ApiError
from assistsync.server.framework.validation import validate
from assistsync.server.group import Context


def _under(where: str, call: Any, *args: Any) -> Any:
    """``call(*args)`` with a 400's ``param`` (and its mention in the message) moved under
    ``where`` — the field of the run request the validated value came from."""
    try:
        return call(*args)
    except ApiError as exc:
        if exc.status == 400 and exc.param and not exc.param.startswith(where):
            old = exc.param
            exc.param = f"{where}.{old}"
            exc.message = exc.message.replace(f"'{old}'", f"'{exc.param}'")
        elif exc.status == 400 and exc.param is None:
            exc.param = where
        raise


class ServerThreads:
    """:class:`~.ports.Threads` over the server's ``threads`` and ``messages`` groups."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def require_thread(self, db: sqlite3.Connection, thread_id: str) -> None:
        threads.get_thread(db, thread_id)

    def add_messages(
        self, db: sqlite3.Connection, thread_id: str, items: list[Json], param: str
    ) -> list[Json]:
        now = self.context.db.now()
        added = []
        for index, item in enumerate(items):
            where = f"{param}[{index}]"
            request = _under(where, validate, messages.CreateMessageRequest, item)
            added.append(messages.add_user_message(db, now, thread_id, request, f"{where}."))
        return added

    def create_thread(self, db: sqlite3.Connection, body: Json | None, param: str) -> Json:
        request = _under(param, validate, threads.CreateThreadRequest, body or {})
        thread: Json = threads.create_thread(
            db, self.context.db.now(), request.metadata, request.messages, f"{param}."
        )
        return thread

    def thread_messages(self, db: sqlite3.Connection, thread_id: str) -> list[Json]:
        return messages.thread_messages(db, thread_id)

    def create_assistant_message(
        self, db: sqlite3.Connection, thread_id: str, assistant_id: str, run_id: str, now: int
    ) -> Json:
        return messages.insert_message(
            db,
            now,
            thread_id,
            role="assistant",
            text=None,
            assistant_id=assistant_id,
            run_id=run_id,
            status="in_progress",
        )

    def finish_assistant_message(
        self,
        db: sqlite3.Connection,
        message_id: str,
        text: str | None,
        now: int,
        incomplete_reason: str | None,
        annotations: Sequence[Json] = (),
    ) -> Json:
        notes = None if text is None else annotations
        if incomplete_reason is None:
            return messages.update_message(
                db, now, message_id, text=text, annotations=notes, status="completed"
            )
        return messages.update_message(
            db,
            now,
            message_id,
            text=text,
            annotations=notes,
            status="incomplete",
            incomplete_reason=incomplete_reason,
        )
