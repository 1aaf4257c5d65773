"""Endpoint group ``messages``: a thread's messages and the files attached to them.

Messages are listed per thread by ``(created_at, seq)``, optionally only those of one run
(``run_id``), with cursors both ways. Every message operation first asks whether its thread
exists (:func:`live_thread`), so this module answers that question and :mod:`.threads` builds
on it (not the reverse).

For the runs group (the functions it calls inside its own transactions):

- :func:`refuse_if_run_active` — the hosted 400 while a run is active on the thread, asking
  ``context.hooks.active_run`` (installed by the runs group; until then nothing is active);
- :func:`insert_message` — a message of any role (the assistant's answers: ``assistant_id``,
  ``run_id``, ``status`` ``in_progress``), :func:`update_message` — its text, annotations and
  status as a run produces them, :func:`thread_messages` — a thread's messages in order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from assistsync.server.common import (
    Body,
    check_unique_file_ids,
    metadata_value,
    page_query,
    plain,
)
from assistsync.server.db import Json, Schema, dumps, new_id, page
from assistsync.server.files import require_files
from assistsync.server.framework.errors import bad_request, not_found
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.framework.validation import validate
from assistsync.server.group import Context, Group

MAX_CONTENT = 256_000
MAX_MESSAGE_FILES = 10
MESSAGE_STATUSES = ("in_progress", "incomplete", "completed")
INCOMPLETE_REASONS = ("content_filter", "max_tokens", "run_cancelled", "run_expired", "run_failed")

SCHEMA = Schema(
    "messages",
    (
        """
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            role TEXT NOT NULL,
            status TEXT NOT NULL,
            assistant_id TEXT,
            run_id TEXT,
            completed_at INTEGER,
            incomplete_at INTEGER,
            incomplete_details TEXT,
            content TEXT NOT NULL,
            file_ids TEXT NOT NULL,
            metadata TEXT NOT NULL
        );
        CREATE INDEX messages_order ON messages (thread_id, created_at, seq);
        CREATE INDEX messages_by_run ON messages (thread_id, run_id, created_at, seq);
        CREATE TABLE message_files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (message_id, file_id)
        );
        CREATE INDEX message_files_order ON message_files (message_id, created_at, seq);
        -- Deleting a thread deletes its messages, and a message its file list.
        CREATE TRIGGER threads_delete_messages AFTER DELETE ON threads BEGIN
            DELETE FROM messages WHERE thread_id = old.id;
        END;
        CREATE TRIGGER messages_delete_files AFTER DELETE ON messages BEGIN
            DELETE FROM message_files WHERE message_id = old.id;
        END;
        """,
    ),
)


# -- request models -------------------------------------------------------------------------------


class CreateMessageRequest(Body):
    """``CreateMessageRequest``: ``role`` ``user`` or ``assistant`` (the 2.0.0 spec's enum; SDK
    1.20 types it so). A client's assistant message seeds a conversation: it has no
    ``assistant_id`` or ``run_id``, and a run's model reads it as an assistant turn."""

    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_MESSAGE_FILES)
    metadata: dict[str, Any] | None = None


class ModifyMessageRequest(Body):
    """``ModifyMessageRequest``: only ``metadata`` (null: unchanged)."""

    metadata: dict[str, Any] | None = None


# -- queries --------------------------------------------------------------------------------------


def live_thread(db: sqlite3.Connection, thread_id: str) -> sqlite3.Row:
    """The thread's row, or a 404."""
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM threads WHERE id = ?", (thread_id,)
    ).fetchone()
    if row is None:
        raise not_found(f"No thread found with id '{thread_id}'.")
    return row


def text_content(value: str, annotations: Sequence[Json] = ()) -> list[Json]:
    """A message's ``content`` holding one text part."""
    return [{"type": "text", "text": {"value": value, "annotations": list(annotations)}}]


def render_message(row: sqlite3.Row) -> Json:
    """The message object."""
    details = row["incomplete_details"]
    return {
        "id": row["id"],
        "object": "thread.message",
        "created_at": row["created_at"],
        "thread_id": row["thread_id"],
        "status": row["status"],
        "incomplete_details": json.loads(details) if details is not None else None,
        "completed_at": row["completed_at"],
        "incomplete_at": row["incomplete_at"],
        "role": row["role"],
        "content": json.loads(row["content"]),
        "assistant_id": row["assistant_id"],
        "run_id": row["run_id"],
        "file_ids": json.loads(row["file_ids"]),
        "metadata": json.loads(row["metadata"]),
    }


def message_row(db: sqlite3.Connection, thread_id: str, message_id: str) -> sqlite3.Row:
    """The message's row; a 404 when the thread or the message (in that thread) is missing."""
    live_thread(db, thread_id)
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id)
    ).fetchone()
    if row is None:
        raise not_found(f"No message found with id '{message_id}'.")
    return row


def refuse_if_run_active(context: Context, db: sqlite3.Connection, thread_id: str) -> None:
    """The hosted API's 400 when a run is active on the thread (word for word)."""
    run_id = context.hooks.active_run(db, thread_id)
    if run_id is not None:
        raise bad_request(f"Can't add messages to {thread_id} while a run {run_id} is active.")


def insert_message(
    db: sqlite3.Connection,
    now: int,
    thread_id: str,
    *,
    role: Literal["user", "assistant"],
    text: str | None,
    annotations: Sequence[Json] = (),
    file_ids: Sequence[str] = (),
    metadata: Json | None = None,
    assistant_id: str | None = None,
    run_id: str | None = None,
    status: Literal["in_progress", "completed"] = "completed",
) -> Json:
    """Add a message to an existing thread (checks done by the caller) and return it.

    ``text=None`` gives an empty ``content`` (an answer not yet started, as the hosted API's
    ``thread.message.created`` event showed it). A ``completed`` message has
    ``completed_at = now``; an ``in_progress`` one gets its end from :func:`update_message`.
    """
    message_id = new_id("msg_")
    db.execute(
        "INSERT INTO messages (id, thread_id, created_at, role, status, assistant_id, run_id, "
        "completed_at, content, file_ids, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            message_id,
            thread_id,
            now,
            role,
            status,
            assistant_id,
            run_id,
            now if status == "completed" else None,
            dumps(text_content(text, annotations) if text is not None else []),
            dumps(list(file_ids)),
            dumps(metadata or {}),
        ),
    )
    db.executemany(
        "INSERT INTO message_files (message_id, file_id, created_at) VALUES (?, ?, ?)",
        [(message_id, file_id, now) for file_id in file_ids],
    )
    return message_by_id(db, message_id)


def message_by_id(db: sqlite3.Connection, message_id: str) -> Json:
    """A message by id alone (for code that already knows it exists)."""
    row = db.execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
    if row is None:
        raise not_found(f"No message found with id '{message_id}'.")
    return render_message(row)


def update_message(
    db: sqlite3.Connection,
    now: int,
    message_id: str,
    *,
    text: str | None = None,
    annotations: Sequence[Json] | None = None,
    status: Literal["in_progress", "completed", "incomplete"] | None = None,
    incomplete_reason: str | None = None,
) -> Json:
    """Replace a message's text (and/or annotations) and/or move its status on; return it.

    ``completed`` sets ``completed_at``; ``incomplete`` sets ``incomplete_at`` and
    ``incomplete_details = {"reason": incomplete_reason}`` (one of :data:`INCOMPLETE_REASONS`).
    """
    current = message_by_id(db, message_id)
    part: Json = current["content"][0]["text"] if current["content"] else {}
    value: str = text if text is not None else part.get("value", "")
    notes: list[Json] = list(
        annotations if annotations is not None else part.get("annotations", [])
    )
    fields: dict[str, Any] = {"content": dumps(text_content(value, notes))}
    if status is not None:
        fields["status"] = status
        if status == "completed":
            fields["completed_at"] = now
        elif status == "incomplete":
            if incomplete_reason not in INCOMPLETE_REASONS:
                raise ValueError(f"incomplete_reason must be one of {INCOMPLETE_REASONS}")
            fields["incomplete_at"] = now
            fields["incomplete_details"] = dumps({"reason": incomplete_reason})
    assignments = ", ".join(f"{name} = ?" for name in fields)
    db.execute(f"UPDATE messages SET {assignments} WHERE id = ?", (*fields.values(), message_id))
    return message_by_id(db, message_id)


def thread_messages(db: sqlite3.Connection, thread_id: str) -> list[Json]:
    """Every message of the thread, oldest first (what a model reads)."""
    rows = db.execute(
        "SELECT * FROM messages WHERE thread_id = ? ORDER BY created_at, seq", (thread_id,)
    ).fetchall()
    return [render_message(row) for row in rows]


def add_user_message(
    db: sqlite3.Connection, now: int, thread_id: str, request: CreateMessageRequest, where: str = ""
) -> Json:
    """Check a validated create-message request (a client's ``user`` or ``assistant``
    message) against the database and insert it.

    ``where`` prefixes ``param`` in errors (``messages[0].``, ``additional_messages[1].``).
    """
    check_unique_file_ids(request.file_ids, "to a message", f"{where}file_ids")
    require_files(db, request.file_ids, f"{where}file_ids", "assistants", "a message")
    return insert_message(
        db,
        now,
        thread_id,
        role=request.role,
        text=request.content,
        file_ids=request.file_ids,
        metadata=metadata_value(request.metadata, f"{where}metadata"),
    )


# -- handlers -------------------------------------------------------------------------------------


def _list(request: Request[Context]) -> Response:
    query, filters = page_query(request.query, "run_id")
    thread_id = request.params["thread_id"]
    run_id = filters.get("run_id")
    if run_id == "":
        # As an empty cursor or limit is refused, rather than filtering on no run at all.
        raise bad_request(
            "Invalid 'run_id': expected the id of a run of this thread, but got an empty "
            "string. Leave 'run_id' out to list every message.",
            "run_id",
        )
    with request.context.db.read() as db:
        live_thread(db, thread_id)
        found = page(
            db,
            render_message,
            table="messages",
            scope="thread_id = ?",
            scope_args=(thread_id,),
            visible="run_id = ?" if run_id is not None else "1 = 1",
            visible_args=(run_id,) if run_id is not None else (),
            query=query,
            noun="message in this thread",
        )
        return Response(found.envelope())


def _create(request: Request[Context]) -> Response:
    plain(request)
    context = request.context
    thread_id = request.params["thread_id"]
    with context.db.read() as db:
        live_thread(db, thread_id)
    body = validate(CreateMessageRequest, request.json())
    with context.db.write() as db:
        live_thread(db, thread_id)
        refuse_if_run_active(context, db, thread_id)
        return Response(add_user_message(db, context.db.now(), thread_id, body))


def _get(request: Request[Context]) -> Response:
    plain(request)
    with request.context.db.read() as db:
        row = message_row(db, request.params["thread_id"], request.params["message_id"])
        return Response(render_message(row))


def _modify(request: Request[Context]) -> Response:
    plain(request)
    thread_id, message_id = request.params["thread_id"], request.params["message_id"]
    database = request.context.db
    with database.read() as db:
        message_row(db, thread_id, message_id)
    body = validate(ModifyMessageRequest, request.json())
    with database.write() as db:
        row = message_row(db, thread_id, message_id)
        if body.metadata is not None:
            db.execute(
                "UPDATE messages SET metadata = ? WHERE seq = ?",
                (dumps(metadata_value(body.metadata)), row["seq"]),
            )
        return Response(render_message(message_row(db, thread_id, message_id)))


def render_message_file(row: sqlite3.Row) -> Json:
    return {
        "id": row["file_id"],
        "object": "thread.message.file",
        "created_at": row["created_at"],
        "message_id": row["message_id"],
    }


def _list_files(request: Request[Context]) -> Response:
    query, _ = page_query(request.query)
    message_id = request.params["message_id"]
    with request.context.db.read() as db:
        message_row(db, request.params["thread_id"], message_id)
        found = page(
            db,
            render_message_file,
            table="message_files",
            id_column="file_id",
            scope="message_id = ?",
            scope_args=(message_id,),
            query=query,
            noun="file attached to this message",
        )
        return Response(found.envelope())


def _get_file(request: Request[Context]) -> Response:
    plain(request)
    message_id, file_id = request.params["message_id"], request.params["file_id"]
    with request.context.db.read() as db:
        message_row(db, request.params["thread_id"], message_id)
        row = db.execute(
            "SELECT * FROM message_files WHERE message_id = ? AND file_id = ?",
            (message_id, file_id),
        ).fetchone()
        if row is None:
            raise not_found(f"No file with id '{file_id}' is attached to message '{message_id}'.")
        return Response(render_message_file(row))


_THREAD = "/v1/threads/{thread_id}"

GROUP = Group(
    title="messages",
    routes=(
        Route("GET", f"{_THREAD}/messages", _list, beta=True, summary="?run_id=..."),
        Route("POST", f"{_THREAD}/messages", _create, beta=True),
        Route("GET", f"{_THREAD}/messages/{{message_id}}", _get, beta=True),
        Route("POST", f"{_THREAD}/messages/{{message_id}}", _modify, beta=True),
        Route("GET", f"{_THREAD}/messages/{{message_id}}/files", _list_files, beta=True),
        Route("GET", f"{_THREAD}/messages/{{message_id}}/files/{{file_id}}", _get_file, beta=True),
    ),
    schema=SCHEMA,
)
