"""Storage: every object the server holds, in SQLite, with file contents as plain files.

One implementation serves both modes, so persistence cannot drift from the default mode:
``db=None`` uses an in-memory SQLite database and a private temporary directory for file
contents (both gone on :meth:`Store.close`); ``db=Path`` uses that database file and the
directory ``<db>.files/`` beside it, so everything survives a restart.

File contents never live in the database or in memory: an upload is streamed into a temporary
file inside the content directory and renamed to ``<content dir>/<file id>`` when the file row
commits, so a 200 MB upload costs one copy on disk and a few chunk-sized buffers.

Concurrency: one connection (``check_same_thread=False``) guarded by one lock. At this scale a
lock is cheaper than a connection per thread, and it makes each operation's read-check-write
(e.g. "at most 20 files per assistant") atomic without retry loops.

Ordering: lists are ordered by ``(created_at, seq)`` where ``seq`` is the row's insertion
sequence, so the order is total and stable even when many objects share a ``created_at``
second. Deleted assistants stay as tombstones (hidden from every read) so that a cursor taken
from an assistant deleted between two pages still locates its position.

Threads, messages and runs will add their tables to ``_SCHEMA`` and methods beside these.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import string
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from assistsync.server.errors import bad_request, not_found

MAX_FILES_PER_ASSISTANT = 20
"""The hosted API's limit on files attached to one assistant."""

_ALPHABET = string.ascii_letters + string.digits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assistants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assistants_order ON assistants (deleted, created_at, seq);
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL
);
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
"""

_UPLOAD_PREFIX = ".upload-"

Json = dict[str, Any]


def new_id(prefix: str) -> str:
    """``prefix`` + 24 random alphanumerics, the shape of the hosted API's ids."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


@dataclass(frozen=True)
class PageQuery:
    """A validated list request: ``limit`` in 1..100, cursors as object ids."""

    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a cursor list, rendered as the ``{"object": "list", ...}`` envelope."""

    data: list[Json]
    has_more: bool

    def envelope(self) -> Json:
        """The list object: ``first_id``/``last_id`` are null for an empty page."""
        return {
            "object": "list",
            "data": self.data,
            "first_id": self.data[0]["id"] if self.data else None,
            "last_id": self.data[-1]["id"] if self.data else None,
            "has_more": self.has_more,
        }


class Store:
    """All server state; every public method is atomic and thread-safe."""

    def __init__(self, db: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._owns_content_dir = db is None
        if db is None:
            self.content_dir = Path(tempfile.mkdtemp(prefix="assistsync-server-"))
            target = ":memory:"
        else:
            db.parent.mkdir(parents=True, exist_ok=True)
            self.content_dir = db.with_name(db.name + ".files")
            self.content_dir.mkdir(exist_ok=True)
            # Uploads interrupted by a crash leave temporaries that no row points at.
            for stale in self.content_dir.glob(_UPLOAD_PREFIX + "*"):
                stale.unlink(missing_ok=True)
            target = str(db)
        # isolation_level=None: transactions are explicit (see _tx), never implicit.
        self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if db is not None:
            # WAL + NORMAL: a committed change survives a process crash; an OS crash may lose
            # the last few, an acceptable trade for a development server's write speed.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database; in memory mode also delete the file contents."""
        with self._lock:
            self._db.close()
            if self._owns_content_dir:
                shutil.rmtree(self.content_dir, ignore_errors=True)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock for a whole transaction; roll back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- pagination ---------------------------------------------------------------------------

    @staticmethod
    def _page_rows(
        db: sqlite3.Connection,
        *,
        table: str,
        id_column: str,
        scope: str,
        scope_args: Sequence[Any],
        visible: str,
        query: PageQuery,
        noun: str,
    ) -> tuple[list[sqlite3.Row], bool]:
        """Rows of one page ordered by ``(created_at, seq)`` plus whether more lie beyond.

        ``scope`` restricts both the rows and the cursor lookup (e.g. one assistant's files);
        ``visible`` only the rows, so a tombstoned cursor still marks a position.
        """
        ascending = query.order == "asc"
        conds = [scope, visible]
        args: list[Any] = list(scope_args)
        for param, cursor, later in (
            ("after", query.after, ascending),
            ("before", query.before, not ascending),
        ):
            if cursor is None:
                continue
            key = db.execute(
                f"SELECT created_at, seq FROM {table} WHERE {scope} AND {id_column} = ?",
                (*scope_args, cursor),
            ).fetchone()
            if key is None:
                raise bad_request(
                    f"Invalid '{param}': no {noun} with id '{cursor}' to page from.", param
                )
            conds.append(f"(created_at, seq) {'>' if later else '<'} (?, ?)")
            args.extend((key["created_at"], key["seq"]))
        # Paging backwards (before without after) reads from the cursor outwards, then flips
        # the rows back into the requested order.
        backwards = query.before is not None and query.after is None
        direction = "ASC" if ascending != backwards else "DESC"
        rows = db.execute(
            f"SELECT * FROM {table} WHERE {' AND '.join(conds)} "
            f"ORDER BY created_at {direction}, seq {direction} LIMIT ?",
            (*args, query.limit + 1),
        ).fetchall()
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        if backwards:
            rows.reverse()
        return rows, has_more

    # -- assistants ---------------------------------------------------------------------------

    @staticmethod
    def _file_ids(db: sqlite3.Connection, assistant_ids: Sequence[str]) -> dict[str, list[str]]:
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

    @staticmethod
    def _render_assistant(row: sqlite3.Row, file_ids: list[str]) -> Json:
        body: Json = json.loads(row["body"])
        return {
            "id": row["id"],
            "object": "assistant",
            "created_at": row["created_at"],
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

    @staticmethod
    def _live_assistant(db: sqlite3.Connection, assistant_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM assistants WHERE id = ? AND deleted = 0", (assistant_id,)
        ).fetchone()
        if row is None:
            raise not_found(f"No assistant found with id '{assistant_id}'.")
        return row

    @staticmethod
    def _check_attachable(db: sqlite3.Connection, file_ids: Sequence[str], param: str) -> None:
        """Every id must name an existing file with purpose ``assistants``."""
        for index, file_id in enumerate(file_ids):
            where = f"{param}[{index}]" if param == "file_ids" else param
            row = db.execute("SELECT purpose FROM files WHERE id = ?", (file_id,)).fetchone()
            if row is None:
                raise bad_request(f"No file found with id '{file_id}'.", where)
            if row["purpose"] != "assistants":
                raise bad_request(
                    f"File '{file_id}' has purpose '{row['purpose']}'; only files uploaded "
                    "with purpose 'assistants' can be attached to an assistant.",
                    where,
                )

    @staticmethod
    def _attach(db: sqlite3.Connection, assistant_id: str, file_ids: Sequence[str]) -> None:
        now = int(time.time())
        db.executemany(
            "INSERT INTO assistant_files (assistant_id, file_id, created_at) VALUES (?, ?, ?)",
            [(assistant_id, file_id, now) for file_id in file_ids],
        )

    def create_assistant(self, fields: Json, file_ids: Sequence[str]) -> Json:
        """Create an assistant from validated ``fields`` with ``file_ids`` attached in order."""
        assistant_id = new_id("asst_")
        with self._tx() as db:
            self._check_attachable(db, file_ids, "file_ids")
            db.execute(
                "INSERT INTO assistants (id, created_at, body) VALUES (?, ?, ?)",
                (assistant_id, int(time.time()), json.dumps(fields, separators=(",", ":"))),
            )
            self._attach(db, assistant_id, file_ids)
            row = self._live_assistant(db, assistant_id)
            return self._render_assistant(row, list(file_ids))

    def get_assistant(self, assistant_id: str) -> Json:
        """The assistant, or a 404 :class:`ApiError`."""
        with self._lock:
            row = self._live_assistant(self._db, assistant_id)
            return self._render_assistant(row, self._file_ids(self._db, [assistant_id])[row["id"]])

    def modify_assistant(
        self, assistant_id: str, changes: Json, file_ids: Sequence[str] | None
    ) -> Json:
        """Apply ``changes`` to the stored fields; ``file_ids`` (if given) replaces the set.

        Files that stay attached keep their attachment time (and so their place in the
        assistant-files list); new ones are appended in the order given.
        """
        with self._tx() as db:
            row = self._live_assistant(db, assistant_id)
            body: Json = json.loads(row["body"])
            body.update(changes)
            db.execute(
                "UPDATE assistants SET body = ? WHERE seq = ?",
                (json.dumps(body, separators=(",", ":")), row["seq"]),
            )
            if file_ids is not None:
                self._check_attachable(db, file_ids, "file_ids")
                current = self._file_ids(db, [assistant_id])[assistant_id]
                wanted = set(file_ids)
                db.executemany(
                    "DELETE FROM assistant_files WHERE assistant_id = ? AND file_id = ?",
                    [(assistant_id, fid) for fid in current if fid not in wanted],
                )
                self._attach(db, assistant_id, [fid for fid in file_ids if fid not in current])
            row = self._live_assistant(db, assistant_id)
            return self._render_assistant(row, self._file_ids(db, [assistant_id])[assistant_id])

    def delete_assistant(self, assistant_id: str) -> None:
        """Delete the assistant and its attachments (the files themselves stay)."""
        with self._tx() as db:
            row = self._live_assistant(db, assistant_id)
            db.execute(
                "UPDATE assistants SET deleted = 1, body = '{}' WHERE seq = ?", (row["seq"],)
            )
            db.execute("DELETE FROM assistant_files WHERE assistant_id = ?", (assistant_id,))

    def list_assistants(self, query: PageQuery) -> Page:
        """One page of live assistants."""
        with self._lock:
            rows, has_more = self._page_rows(
                self._db,
                table="assistants",
                id_column="id",
                scope="1 = 1",
                scope_args=(),
                visible="deleted = 0",
                query=query,
                noun="assistant",
            )
            files = self._file_ids(self._db, [row["id"] for row in rows])
            return Page([self._render_assistant(row, files[row["id"]]) for row in rows], has_more)

    # -- assistant files ----------------------------------------------------------------------

    @staticmethod
    def _render_assistant_file(row: sqlite3.Row) -> Json:
        return {
            "id": row["file_id"],
            "object": "assistant.file",
            "created_at": row["created_at"],
            "assistant_id": row["assistant_id"],
        }

    @staticmethod
    def _attachment(db: sqlite3.Connection, assistant_id: str, file_id: str) -> sqlite3.Row:
        Store._live_assistant(db, assistant_id)
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM assistant_files WHERE assistant_id = ? AND file_id = ?",
            (assistant_id, file_id),
        ).fetchone()
        if row is None:
            raise not_found(
                f"No file with id '{file_id}' is attached to assistant '{assistant_id}'."
            )
        return row

    def attach_file(self, assistant_id: str, file_id: str) -> Json:
        """Attach an existing ``assistants`` file; 400 on a duplicate or a 21st file."""
        with self._tx() as db:
            self._live_assistant(db, assistant_id)
            self._check_attachable(db, [file_id], "file_id")
            current = self._file_ids(db, [assistant_id])[assistant_id]
            if file_id in current:
                raise bad_request(
                    f"File '{file_id}' is already attached to assistant '{assistant_id}'.",
                    "file_id",
                )
            if len(current) >= MAX_FILES_PER_ASSISTANT:
                raise bad_request(
                    f"Assistant '{assistant_id}' already has {MAX_FILES_PER_ASSISTANT} files "
                    "attached, the maximum; detach one first.",
                    "file_id",
                )
            self._attach(db, assistant_id, [file_id])
            return self._render_assistant_file(self._attachment(db, assistant_id, file_id))

    def get_assistant_file(self, assistant_id: str, file_id: str) -> Json:
        """The attachment, or a 404 when the assistant or the attachment does not exist."""
        with self._lock:
            return self._render_assistant_file(self._attachment(self._db, assistant_id, file_id))

    def detach_file(self, assistant_id: str, file_id: str) -> None:
        """Remove the attachment; the file itself stays."""
        with self._tx() as db:
            row = self._attachment(db, assistant_id, file_id)
            db.execute("DELETE FROM assistant_files WHERE seq = ?", (row["seq"],))

    def list_assistant_files(self, assistant_id: str, query: PageQuery) -> Page:
        """One page of an assistant's attachments."""
        with self._lock:
            self._live_assistant(self._db, assistant_id)
            rows, has_more = self._page_rows(
                self._db,
                table="assistant_files",
                id_column="file_id",
                scope="assistant_id = ?",
                scope_args=(assistant_id,),
                visible="1 = 1",
                query=query,
                noun="file attached to this assistant",
            )
            return Page([self._render_assistant_file(row) for row in rows], has_more)

    # -- files --------------------------------------------------------------------------------

    @staticmethod
    def _render_file(row: sqlite3.Row) -> Json:
        return {
            "id": row["id"],
            "object": "file",
            "bytes": row["bytes"],
            "created_at": row["created_at"],
            "filename": row["filename"],
            "purpose": row["purpose"],
            "status": "processed",
        }

    @staticmethod
    def _file_row(db: sqlite3.Connection, file_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = db.execute(
            "SELECT * FROM files WHERE id = ?", (file_id,)
        ).fetchone()
        if row is None:
            raise not_found(f"No such File object: {file_id}")
        return row

    def new_upload(self) -> IO[bytes]:
        """An open temporary file inside the content directory for an upload to stream into.

        Pass its name to :meth:`create_file` to keep it, or to :meth:`discard_upload`.
        """
        return tempfile.NamedTemporaryFile(  # the caller closes it
            dir=self.content_dir, prefix=_UPLOAD_PREFIX, delete=False
        )

    @staticmethod
    def discard_upload(path: str) -> None:
        """Delete an upload that will not become a file."""
        with contextlib.suppress(OSError):
            os.unlink(path)

    def create_file(self, upload_path: str, filename: str, purpose: str, size: int) -> Json:
        """Turn a finished upload into a file object (the upload is moved, not copied)."""
        file_id = new_id("file-")
        with self._tx() as db:
            db.execute(
                "INSERT INTO files (id, created_at, bytes, filename, purpose) "
                "VALUES (?, ?, ?, ?, ?)",
                (file_id, int(time.time()), size, filename, purpose),
            )
            # Moved last: if the rename fails the row is rolled back, so no row ever points
            # at missing content.
            os.replace(upload_path, self.content_dir / file_id)
            return self._render_file(self._file_row(db, file_id))

    def get_file(self, file_id: str) -> Json:
        """The file object, or a 404."""
        with self._lock:
            return self._render_file(self._file_row(self._db, file_id))

    def list_files(self, purpose: str | None) -> list[Json]:
        """Every file (newest first), optionally only those with ``purpose``."""
        with self._lock:
            where, args = ("WHERE purpose = ?", (purpose,)) if purpose is not None else ("", ())
            rows = self._db.execute(
                f"SELECT * FROM files {where} ORDER BY created_at DESC, seq DESC", args
            ).fetchall()
            return [self._render_file(row) for row in rows]

    def delete_file(self, file_id: str) -> None:
        """Delete the file, its content, and every attachment of it."""
        with self._tx() as db:
            row = self._file_row(db, file_id)
            db.execute("DELETE FROM files WHERE seq = ?", (row["seq"],))
            db.execute("DELETE FROM assistant_files WHERE file_id = ?", (file_id,))
            # Unlinking under the lock keeps a concurrent re-read from racing the delete; a
            # download already streaming keeps its open handle (POSIX semantics).
            with contextlib.suppress(OSError):
                (self.content_dir / file_id).unlink()

    def open_content(self, file_id: str) -> tuple[IO[bytes], int]:
        """An open handle on the file's bytes and their count; the caller closes it."""
        with self._lock:
            row = self._file_row(self._db, file_id)
            handle = (self.content_dir / file_id).open("rb")
            return handle, int(row["bytes"])
