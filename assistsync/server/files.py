"""Endpoint group ``files``: upload, list, get, delete and download files.

File contents never live in the database or in memory: an upload is streamed into a temporary
file inside the content directory (``<db>.files/``) and renamed to ``<content dir>/<file id>``
when the file row commits, so a 200 MB upload costs one copy on disk and a few chunk-sized
buffers. Other groups check the files they reference with :func:`require_files`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from assistsync.server.common import plain
from assistsync.server.db import Database, Json, Schema, new_id
from assistsync.server.framework.errors import SERVER_ERROR, ApiError, bad_request, not_found
from assistsync.server.framework.routing import Request, Response, Route
from assistsync.server.framework.validation import single_params
from assistsync.server.group import Context, Group
from assistsync.server.retrieval import (
    FileRejected,
    Prepared,
    check_upload,
    is_retrievable,
    prepare_upload,
    store,
)
from assistsync.server.retrieval.extract import extension_of
from assistsync.server.uploads import receive_upload

FILE_PURPOSES = ("fine-tune", "assistants")
CONTENT_DIR = "files"
"""The database directory that holds file contents (``<db>.files/``)."""
_UPLOAD_PREFIX = ".upload-"

SCHEMA = Schema(
    "files",
    (
        """
        CREATE TABLE IF NOT EXISTS files (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            filename TEXT NOT NULL,
            purpose TEXT NOT NULL
        );
        """,
    ),
)


# -- queries -------------------------------------------------------------------------------------


def render_file(row: sqlite3.Row) -> Json:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": row["created_at"],
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
    }


def file_row(db: sqlite3.Connection, file_id: str) -> sqlite3.Row:
    """The file's row, or a 404."""
    row: sqlite3.Row | None = db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
    if row is None:
        raise not_found(f"No such File object: {file_id}")
    return row


def require_files(
    db: sqlite3.Connection, file_ids: Sequence[str], param: str, purpose: str | None, target: str
) -> None:
    """Every id names an existing file (with ``purpose``, when given), else a 400.

    ``param`` names a list (``file_ids``, ``messages[0].file_ids``: each error then names
    ``file_ids[i]``) or a single field (``file_id``); ``target`` completes "can be attached to
    ..." ("an assistant", "a message").
    """
    for index, file_id in enumerate(file_ids):
        where = f"{param}[{index}]" if param.endswith("file_ids") else param
        row = db.execute("SELECT purpose FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise bad_request(f"No file found with id '{file_id}'.", where)
        if purpose is not None and row["purpose"] != purpose:
            raise bad_request(
                f"File '{file_id}' has purpose '{row['purpose']}'; only files uploaded "
                f"with purpose '{purpose}' can be attached to {target}.",
                where,
            )


def content_dir(database: Database) -> Path:
    """Where file contents live; stale upload temporaries (from a crash) are removed once."""
    return database.directory(CONTENT_DIR)


def _start(context: Context) -> None:
    # Uploads interrupted by a crash leave temporaries that no row points at.
    for stale in content_dir(context.db).glob(_UPLOAD_PREFIX + "*"):
        stale.unlink(missing_ok=True)


def new_upload(database: Database) -> IO[bytes]:
    """An open temporary file in the content directory for an upload to stream into.

    Pass its name to :func:`create_file` to keep it, or to :func:`discard_upload`.
    """
    return tempfile.NamedTemporaryFile(  # the caller closes it
        dir=content_dir(database), prefix=_UPLOAD_PREFIX, delete=False
    )


def discard_upload(path: str) -> None:
    """Delete an upload that will not become a file."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def create_file(
    database: Database,
    upload_path: str,
    filename: str,
    purpose: str,
    size: int,
    prepared: Prepared | None = None,
) -> Json:
    """Turn a finished upload into a file object (the upload is moved, not copied).

    ``prepared`` (its retrieval index, from :func:`index_upload`) is stored in the same
    transaction, so a file is searchable from the moment it exists.
    """
    file_id = new_id("file-")
    with database.write() as db:
        db.execute(
            "INSERT INTO files (id, created_at, bytes, filename, purpose) VALUES (?, ?, ?, ?, ?)",
            (file_id, database.now(), size, filename, purpose),
        )
        if prepared is not None:
            store(db, file_id, prepared)
        # Moved last: if the rename fails the row is rolled back, so no row ever points at
        # missing content.
        os.replace(upload_path, content_dir(database) / file_id)
        return render_file(file_row(db, file_id))


def index_upload(upload_path: str, filename: str, purpose: str) -> Prepared | None:
    """The retrieval index of a received upload, computed before any lock is taken.

    A 400 for what the hosted API refused at upload (an unknown extension; here also content
    that cannot be read, since the index is built now and not at the first run).
    """
    try:
        if purpose != "assistants":
            return None
        check_upload(filename)
        if extension_of(filename) and not is_retrievable(filename):
            return None  # images, archives...: kept for code interpreter, never read here
        return prepare_upload(filename, purpose, Path(upload_path).read_bytes())
    except FileRejected as exc:
        raise bad_request(exc.message, exc.param) from None


def delete_file(database: Database, file_id: str) -> None:
    """Delete the file and its content (groups that attach files cascade by trigger; the
    retrieval index forgets it by trigger too)."""
    with database.write() as db:
        row = file_row(db, file_id)
        db.execute("DELETE FROM files WHERE seq = ?", (row["seq"],))
        # Unlinking inside the transaction keeps a concurrent re-read from racing the delete;
        # a download already streaming keeps its open handle (POSIX semantics).
        with contextlib.suppress(OSError):
            (content_dir(database) / file_id).unlink()


# -- handlers -------------------------------------------------------------------------------------


def list_files(request: Request[Context]) -> Response:
    purpose = single_params(request.query, ("purpose",)).get("purpose")
    with request.context.db.read() as db:
        where, args = ("WHERE purpose = ?", (purpose,)) if purpose is not None else ("", ())
        rows = db.execute(
            f"SELECT * FROM files {where} ORDER BY created_at DESC, seq DESC", args
        ).fetchall()
        return Response({"object": "list", "data": [render_file(row) for row in rows]})


def upload_file(request: Request[Context]) -> Response:
    plain(request)
    database = request.context.db
    try:
        upload = receive_upload(
            request,
            new_upload=lambda: new_upload(database),
            discard=discard_upload,
            max_bytes=request.context.max_upload_bytes,
            purposes=FILE_PURPOSES,
        )
        try:
            prepared = index_upload(upload.path, upload.filename, upload.purpose)
            created = create_file(
                database, upload.path, upload.filename, upload.purpose, upload.size, prepared
            )
        except BaseException:
            discard_upload(upload.path)
            raise
    except (TimeoutError, ConnectionError):
        raise  # the client went away: the HTTP layer ends the connection
    except OSError as exc:
        # The content directory refused the bytes (disk full, permissions): the server's
        # environment, not the request, and not a bug.
        raise ApiError(
            500,
            f"The server could not store the upload in {content_dir(database)}: "
            f"{exc.strerror or exc}. Its operator must free space or fix permissions.",
            type=SERVER_ERROR,
        ) from exc
    return Response(created)


def get_file(request: Request[Context]) -> Response:
    plain(request)
    with request.context.db.read() as db:
        return Response(render_file(file_row(db, request.params["file_id"])))


def remove_file(request: Request[Context]) -> Response:
    plain(request)
    file_id = request.params["file_id"]
    delete_file(request.context.db, file_id)
    return Response({"id": file_id, "object": "file", "deleted": True})


def file_content(request: Request[Context]) -> Response:
    plain(request)
    file_id = request.params["file_id"]
    database = request.context.db
    with database.read() as db:
        row = file_row(db, file_id)
        where = content_dir(database) / file_id
        try:
            handle = where.open("rb")
        except OSError as exc:
            # Someone removed or locked the stored bytes behind the server's back.
            raise ApiError(
                500,
                f"The server cannot read the content of {file_id} ({where}): "
                f"{exc.strerror or exc}. Its operator must restore the file or delete it.",
                type=SERVER_ERROR,
            ) from exc
    return Response(
        stream=handle, length=int(row["bytes"]), content_type="application/octet-stream"
    )


GROUP = Group(
    title="files",
    routes=(
        Route("GET", "/v1/files", list_files, summary="?purpose=...", quick=True),
        Route("POST", "/v1/files", upload_file, summary="multipart: file, purpose"),
        Route("GET", "/v1/files/{file_id}", get_file, quick=True),
        Route("DELETE", "/v1/files/{file_id}", remove_file, quick=True),
        Route("GET", "/v1/files/{file_id}/content", file_content, quick=True),
    ),
    schema=SCHEMA,
    notes=("GET /v1/files returns every file at once (no cursor in v1).",),
    start=_start,
)
