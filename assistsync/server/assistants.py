"""Endpoint group ``assistants``: create, list, get, modify and delete assistants.

Also owns the ``assistant_files`` table (an assistant's ``file_ids`` are its rows there, in
attachment order), which the ``assistant files`` group serves one attachment at a time.
Deleted assistants stay as tombstones (hidden from every read) so that a cursor taken from an
assistant deleted between two pages still locates its position.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from assistsync.server.common import (
    Body,
    Tool,
    check_tools,
    check_unique_file_ids,
    dump_tools,
    metadata_value,
    page_query,
    plain,
    response_format_value,
)
from assistsync.server.db import (
    Database,
    Json,
    Page,
    PageQuery,
    Schema,
    dumps,
    loads,
    new_id,
    page_rows,
)
from assistsync.server.files import require_files
from assistsync.server.framework.errors import bad_request, not_found
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.framework.validation import validate
from assistsync.server.group import Context, Group
from assistsync.server.retrieval import is_indexed, is_retrievable, not_retrievable_message
from assistsync.server.retrieval.extract import extension_of

MAX_NAME = 256
MAX_DESCRIPTION = 512
MAX_INSTRUCTIONS = 256_000
MAX_TOOLS = 128
MAX_FILE_IDS = 20
"""The hosted API's limit on files attached to one assistant."""

SCHEMA = Schema(
    "assistants",
    (
        """
        CREATE TABLE IF NOT EXISTS assistants (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            body TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS assistants_order ON assistants (deleted, created_at, seq);
        CREATE TABLE IF NOT EXISTS assistant_files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            assistant_id TEXT NOT NULL,
            file_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (assistant_id, file_id)
        );
        CREATE INDEX IF NOT EXISTS assistant_files_order
            ON assistant_files (assistant_id, created_at, seq);
        CREATE INDEX IF NOT EXISTS assistant_files_by_file ON assistant_files (file_id);
        -- A deleted file is detached from every assistant.
        CREATE TRIGGER IF NOT EXISTS files_detach AFTER DELETE ON files BEGIN
            DELETE FROM assistant_files WHERE file_id = old.id;
        END;
        """,
    ),
)


# -- request models -------------------------------------------------------------------------------


class _AssistantFields(Body):
    name: str | None = Field(default=None, max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS)
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_FILE_IDS)
    # Loosely typed here so that the checks below can word their errors like the hosted API.
    metadata: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: Any = None


class CreateAssistantRequest(_AssistantFields):
    """``CreateAssistantRequest``: ``model`` is required."""

    model: str


class ModifyAssistantRequest(_AssistantFields):
    """``ModifyAssistantRequest``: any subset; ``model`` may be omitted but not null."""

    model: str = ""


def _normalised(request: _AssistantFields, fields: set[str]) -> dict[str, Any]:
    """The stored form of the given ``fields``: nulls replaced by the API's defaults."""
    if "model" in fields and not getattr(request, "model", ""):
        raise bad_request("Invalid 'model': must be a non-empty model id.", "model")
    if "tools" in fields:
        check_tools(request.tools)
    if "file_ids" in fields:
        check_unique_file_ids(request.file_ids, "to an assistant")
    out: dict[str, Any] = {}
    for name in fields - {"file_ids"}:
        value = getattr(request, name)
        if name == "tools":
            value = dump_tools(request.tools)
        elif name == "metadata":
            value = metadata_value(value)
        elif name in ("temperature", "top_p"):
            value = float(value) if value is not None else 1.0
        elif name == "response_format":
            value = response_format_value(value)
        out[name] = value
    return out


def assistant_create_fields(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Validate a create body: every stored field (defaults filled in) and the file ids."""
    request = validate(CreateAssistantRequest, data)
    defaults: dict[str, Any] = {
        "name": None,
        "description": None,
        "instructions": None,
        "tools": [],
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    fields = _normalised(request, set(request.model_fields_set) | {"model"})
    return defaults | fields, request.file_ids


def assistant_modify_fields(data: dict[str, Any]) -> tuple[dict[str, Any], list[str] | None]:
    """Validate a modify body: the changed fields, and the new file set if one was given."""
    request = validate(ModifyAssistantRequest, data)
    given = set(request.model_fields_set)
    changes = _normalised(request, given)
    return changes, (request.file_ids if "file_ids" in given else None)


# -- queries --------------------------------------------------------------------------------------


def file_ids_of(db: sqlite3.Connection, assistant_ids: Sequence[str]) -> dict[str, list[str]]:
    """The attached file ids of each assistant, in attachment order."""
    found: dict[str, list[str]] = {aid: [] for aid in assistant_ids}
    if not assistant_ids:
        return found
    marks = ",".join("?" * len(assistant_ids))
    for row in db.execute(
        f"SELECT assistant_id, file_id FROM assistant_files WHERE assistant_id IN ({marks}) "
        "ORDER BY created_at, seq",
        tuple(assistant_ids),
    ):
        found[row["assistant_id"]].append(row["file_id"])
    return found


def render_assistant(row: sqlite3.Row, file_ids: list[str]) -> Json:
    return _rendered(row["id"], row["created_at"], loads(row["body"]), file_ids)


def _rendered(assistant_id: str, created_at: int, body: Json, file_ids: list[str]) -> Json:
    """The assistant object from its stored fields (the API's key order)."""
    return {
        "id": assistant_id,
        "object": "assistant",
        "created_at": created_at,
        "name": body["name"],
        "description": body["description"],
        "model": body["model"],
        "instructions": body["instructions"],
        "tools": body["tools"],
        "file_ids": file_ids,
        "metadata": body["metadata"],
        "top_p": body["top_p"],
        "temperature": body["temperature"],
        "response_format": body["response_format"],
    }


def live_assistant(db: sqlite3.Connection, assistant_id: str) -> sqlite3.Row:
    """The assistant's row, or a 404."""
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM assistants WHERE id = ? AND deleted = 0", (assistant_id,)
    ).fetchone()
    if row is None:
        raise not_found(f"No assistant found with id '{assistant_id}'.")
    return row


def get_assistant(db: sqlite3.Connection, assistant_id: str) -> Json:
    """The assistant object, or a 404."""
    row = live_assistant(db, assistant_id)
    return render_assistant(row, file_ids_of(db, [assistant_id])[assistant_id])


def check_attachable(db: sqlite3.Connection, file_ids: Sequence[str], param: str) -> None:
    """Every id names an existing file with purpose ``assistants``."""
    require_files(db, file_ids, param, "assistants", "an assistant")


def check_retrievable(
    db: sqlite3.Connection, tools: Sequence[Json], file_ids: Sequence[str], param: str
) -> None:
    """With the ``retrieval`` tool, every file must be one retrieval reads, else the hosted
    API's 400 (files it accepted at upload for code interpreter: images, archives, slides).

    A file counts as readable when it was indexed at upload (a name without an extension whose
    content was recognised) or its extension is one retrieval reads.
    """
    if not any(tool.get("type") == "retrieval" for tool in tools):
        return
    refused: list[str] = []
    for file_id in file_ids:
        row = db.execute("SELECT filename FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None or is_retrievable(row["filename"]) or is_indexed(db, file_id):
            continue
        refused.append(extension_of(row["filename"]))
    if refused:
        raise bad_request(not_retrievable_message(refused), param)


def attach(
    database: Database, db: sqlite3.Connection, assistant_id: str, file_ids: Sequence[str]
) -> None:
    """Append attachments (already checked) in the order given."""
    if not file_ids:
        return
    now = database.now()
    db.executemany(
        "INSERT INTO assistant_files (assistant_id, file_id, created_at) VALUES (?, ?, ?)",
        [(assistant_id, file_id, now) for file_id in file_ids],
    )


def create_assistant(database: Database, fields: Json, file_ids: Sequence[str]) -> Json:
    """Create an assistant from validated ``fields`` with ``file_ids`` attached in order."""
    assistant_id = new_id("asst_")
    with database.write() as db:
        check_attachable(db, file_ids, "file_ids")
        check_retrievable(db, fields["tools"], file_ids, "file_ids")
        created_at = database.now()
        stored = dumps(fields)
        db.execute(
            "INSERT INTO assistants (id, created_at, body) VALUES (?, ?, ?)",
            (assistant_id, created_at, stored),
        )
        attach(database, db, assistant_id, file_ids)
        # What was just stored, without reading it back.
        return _rendered(assistant_id, created_at, loads(stored), list(file_ids))


def modify_assistant(
    database: Database, assistant_id: str, changes: Json, file_ids: Sequence[str] | None
) -> Json:
    """Apply ``changes`` to the stored fields; ``file_ids`` (if given) replaces the set.

    Files that stay attached keep their attachment time (and so their place in the
    assistant-files list); new ones are appended in the order given.
    """
    with database.write() as db:
        row = live_assistant(db, assistant_id)
        body: Json = loads(row["body"])
        body.update(changes)
        db.execute("UPDATE assistants SET body = ? WHERE seq = ?", (dumps(body), row["seq"]))
        if file_ids is not None:
            check_attachable(db, file_ids, "file_ids")
        current = file_ids_of(db, [assistant_id])[assistant_id]
        # New tools or new files: either may make the pair one retrieval cannot serve.
        check_retrievable(db, body["tools"], current if file_ids is None else file_ids, "file_ids")
        if file_ids is not None:
            wanted = set(file_ids)
            db.executemany(
                "DELETE FROM assistant_files WHERE assistant_id = ? AND file_id = ?",
                [(assistant_id, fid) for fid in current if fid not in wanted],
            )
            attach(database, db, assistant_id, [fid for fid in file_ids if fid not in current])
        return get_assistant(db, assistant_id)


def delete_assistant(database: Database, assistant_id: str) -> None:
    """Delete the assistant (a tombstone) and its attachments (the files themselves stay)."""
    with database.write() as db:
        row = live_assistant(db, assistant_id)
        db.execute("UPDATE assistants SET deleted = 1, body = '{}' WHERE seq = ?", (row["seq"],))
        db.execute("DELETE FROM assistant_files WHERE assistant_id = ?", (assistant_id,))


def list_assistants(database: Database, query: PageQuery) -> Page:
    """One page of live assistants."""
    with database.read() as db:
        rows, has_more = page_rows(
            db, table="assistants", visible="deleted = 0", query=query, noun="assistant"
        )
        # One query for the file ids of the whole page, not one per assistant.
        files = file_ids_of(db, [row["id"] for row in rows])
        return Page([render_assistant(row, files[row["id"]]) for row in rows], has_more)


# -- handlers -------------------------------------------------------------------------------------


def _list(request: Request[Context]) -> Response:
    query, _ = page_query(request.query)
    return Response(list_assistants(request.context.db, query).envelope())


def _create(request: Request[Context]) -> Response:
    plain(request)
    fields, file_ids = assistant_create_fields(request.json())
    return Response(create_assistant(request.context.db, fields, file_ids))


def _get(request: Request[Context]) -> Response:
    plain(request)
    with request.context.db.read() as db:
        return Response(get_assistant(db, request.params["assistant_id"]))


def _modify(request: Request[Context]) -> Response:
    plain(request)
    assistant_id = request.params["assistant_id"]
    database = request.context.db
    # A missing assistant is a 404 even when the body is also wrong: check it first.
    with database.read() as db:
        live_assistant(db, assistant_id)
    changes, file_ids = assistant_modify_fields(request.json())
    return Response(modify_assistant(database, assistant_id, changes, file_ids))


def _delete(request: Request[Context]) -> Response:
    plain(request)
    assistant_id = request.params["assistant_id"]
    delete_assistant(request.context.db, assistant_id)
    return Response({"id": assistant_id, "object": "assistant.deleted", "deleted": True})


GROUP = Group(
    title="assistants",
    routes=(
        Route("GET", "/v1/assistants", _list, beta=True, quick=True),
        Route("POST", "/v1/assistants", _create, beta=True, quick=True),
        Route("GET", "/v1/assistants/{assistant_id}", _get, beta=True, quick=True),
        Route("POST", "/v1/assistants/{assistant_id}", _modify, beta=True, quick=True),
        Route("DELETE", "/v1/assistants/{assistant_id}", _delete, beta=True, quick=True),
    ),
    schema=SCHEMA,
)
