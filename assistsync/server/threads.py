"""Endpoint group ``threads``: create (optionally with messages), get, modify and delete.

Deleting a thread deletes its messages (a trigger of the messages schema). The runs group
creates threads inside its own transactions with :func:`create_thread`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from assistsync.server.common import Body, metadata_value, plain
from assistsync.server.db import Json, Schema, dumps, new_id
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.framework.validation import validate
from assistsync.server.group import Context, Group
from assistsync.server.messages import CreateMessageRequest, add_user_message, live_thread

SCHEMA = Schema(
    "threads",
    (
        """
        CREATE TABLE threads (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            metadata TEXT NOT NULL
        );
        """,
    ),
)


class CreateThreadRequest(Body):
    """``CreateThreadRequest``: initial ``messages`` and ``metadata`` (null: none)."""

    messages: list[CreateMessageRequest] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None


class ModifyThreadRequest(Body):
    """``ModifyThreadRequest``: only ``metadata`` (null: unchanged)."""

    metadata: dict[str, Any] | None = None


def render_thread(row: sqlite3.Row) -> Json:
    return {
        "id": row["id"],
        "object": "thread",
        "created_at": row["created_at"],
        "metadata": json.loads(row["metadata"]),
    }


def get_thread(db: sqlite3.Connection, thread_id: str) -> Json:
    """The thread object, or a 404."""
    return render_thread(live_thread(db, thread_id))


def create_thread(
    db: sqlite3.Connection,
    now: int,
    metadata: dict[str, Any] | None,
    messages: Sequence[CreateMessageRequest] = (),
    where: str = "",
) -> Json:
    """Create a thread with its first ``messages`` (validated requests) and return it.

    ``where`` prefixes ``param`` in errors (``thread.`` inside create-thread-and-run).
    """
    thread_id = new_id("thread_")
    stored = metadata_value(metadata, f"{where}metadata")
    db.execute(
        "INSERT INTO threads (id, created_at, metadata) VALUES (?, ?, ?)",
        (thread_id, now, dumps(stored)),
    )
    for index, message in enumerate(messages):
        add_user_message(db, now, thread_id, message, f"{where}messages[{index}].")
    return get_thread(db, thread_id)


# -- handlers -------------------------------------------------------------------------------------


def _create(request: Request[Context]) -> Response:
    plain(request)
    body = validate(CreateThreadRequest, request.json(optional=True))
    database = request.context.db
    with database.write() as db:
        return Response(create_thread(db, database.now(), body.metadata, body.messages))


def _get(request: Request[Context]) -> Response:
    plain(request)
    with request.context.db.read() as db:
        return Response(get_thread(db, request.params["thread_id"]))


def _modify(request: Request[Context]) -> Response:
    plain(request)
    thread_id = request.params["thread_id"]
    database = request.context.db
    with database.read() as db:
        live_thread(db, thread_id)
    body = validate(ModifyThreadRequest, request.json())
    with database.write() as db:
        row = live_thread(db, thread_id)
        if body.metadata is not None:
            db.execute(
                "UPDATE threads SET metadata = ? WHERE seq = ?",
                (dumps(metadata_value(body.metadata)), row["seq"]),
            )
        return Response(get_thread(db, thread_id))


def _delete(request: Request[Context]) -> Response:
    plain(request)
    thread_id = request.params["thread_id"]
    with request.context.db.write() as db:
        row = live_thread(db, thread_id)
        db.execute("DELETE FROM threads WHERE seq = ?", (row["seq"],))
    return Response({"id": thread_id, "object": "thread.deleted", "deleted": True})


GROUP = Group(
    title="threads",
    routes=(
        Route("POST", "/v1/threads", _create, beta=True),
        Route("GET", "/v1/threads/{thread_id}", _get, beta=True),
        Route("POST", "/v1/threads/{thread_id}", _modify, beta=True),
        Route("DELETE", "/v1/threads/{thread_id}", _delete, beta=True),
    ),
    schema=SCHEMA,
)
