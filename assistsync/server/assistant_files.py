"""Endpoint group ``assistant files``: attach, list, get and detach an assistant's files.

The table belongs to :mod:`.assistants` (an assistant's ``file_ids`` are its rows).
"""

from __future__ import annotations

import json
import sqlite3

from assistsync.server.assistants import (
    MAX_FILE_IDS,
    attach,
    check_attachable,
    check_retrievable,
    file_ids_of,
    live_assistant,
)
from assistsync.server.common import Body, page_query, plain
from assistsync.server.db import Json, page
from assistsync.server.framework.errors import bad_request, not_found
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.framework.validation import validate
from assistsync.server.group import Context, Group


class CreateAssistantFileRequest(Body):
    """``CreateAssistantFileRequest``."""

    file_id: str


def render_assistant_file(row: sqlite3.Row) -> Json:
    return {
        "id": row["file_id"],
        "object": "assistant.file",
        "created_at": row["created_at"],
        "assistant_id": row["assistant_id"],
    }


def attachment(db: sqlite3.Connection, assistant_id: str, file_id: str) -> sqlite3.Row:
    """The attachment's row; a 404 when the assistant or the attachment does not exist."""
    live_assistant(db, assistant_id)
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM assistant_files WHERE assistant_id = ? AND file_id = ?",
        (assistant_id, file_id),
    ).fetchone()
    if row is None:
        raise not_found(f"No file with id '{file_id}' is attached to assistant '{assistant_id}'.")
    return row


# -- handlers -------------------------------------------------------------------------------------


def _list(request: Request[Context]) -> Response:
    query, _ = page_query(request.query)
    assistant_id = request.params["assistant_id"]
    with request.context.db.read() as db:
        live_assistant(db, assistant_id)
        found = page(
            db,
            render_assistant_file,
            table="assistant_files",
            id_column="file_id",
            scope="assistant_id = ?",
            scope_args=(assistant_id,),
            query=query,
            noun="file attached to this assistant",
        )
        return Response(found.envelope())


def _attach(request: Request[Context]) -> Response:
    """Attach an existing ``assistants`` file; 400 on a duplicate or a 21st file."""
    plain(request)
    assistant_id = request.params["assistant_id"]
    database = request.context.db
    with database.read() as db:
        live_assistant(db, assistant_id)
    file_id = validate(CreateAssistantFileRequest, request.json()).file_id
    with database.write() as db:
        row = live_assistant(db, assistant_id)
        check_attachable(db, [file_id], "file_id")
        check_retrievable(db, json.loads(row["body"])["tools"], [file_id], "file_id")
        current = file_ids_of(db, [assistant_id])[assistant_id]
        if file_id in current:
            raise bad_request(
                f"File '{file_id}' is already attached to assistant '{assistant_id}'.", "file_id"
            )
        if len(current) >= MAX_FILE_IDS:
            raise bad_request(
                f"Assistant '{assistant_id}' already has {MAX_FILE_IDS} files "
                "attached, the maximum; detach one first.",
                "file_id",
            )
        attach(database, db, assistant_id, [file_id])
        return Response(render_assistant_file(attachment(db, assistant_id, file_id)))


def _get(request: Request[Context]) -> Response:
    plain(request)
    with request.context.db.read() as db:
        row = attachment(db, request.params["assistant_id"], request.params["file_id"])
        return Response(render_assistant_file(row))


def _detach(request: Request[Context]) -> Response:
    """Remove the attachment; the file itself stays."""
    plain(request)
    file_id = request.params["file_id"]
    with request.context.db.write() as db:
        row = attachment(db, request.params["assistant_id"], file_id)
        db.execute("DELETE FROM assistant_files WHERE seq = ?", (row["seq"],))
    return Response({"id": file_id, "object": "assistant.file.deleted", "deleted": True})


GROUP = Group(
    title="assistant files",
    routes=(
        Route("GET", "/v1/assistants/{assistant_id}/files", _list, beta=True, quick=True),
        Route("POST", "/v1/assistants/{assistant_id}/files", _attach, beta=True, quick=True),
        Route("GET", "/v1/assistants/{assistant_id}/files/{file_id}", _get, beta=True, quick=True),
        Route(
            "DELETE",
            "/v1/assistants/{assistant_id}/files/{file_id}",
            _detach,
            beta=True,
            quick=True,
        ),
    ),
)
