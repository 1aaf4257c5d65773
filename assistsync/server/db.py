"""The database layer: one SQLite database for every endpoint group, plus cursor paging.

One implementation serves both modes, so persistence cannot drift from the default mode:
``path=None`` uses an in-memory database and private temporary directories (gone on
:meth:`Database.close`); a path uses that database file and directories beside it
(``<db>.<name>/``, see :meth:`Database.directory`), so everything survives a restart.

Schema: every endpoint group registers a :class:`Schema` — its name and an ordered tuple of
migration steps (SQL scripts). Each step runs once per database, in order, and the count of
steps applied is recorded per group in ``schema_versions``; a later release appends steps,
never edits one. Step 1 of the first groups uses ``CREATE ... IF NOT EXISTS`` because
databases written before versions were recorded already hold those tables.

Concurrency: one connection (``check_same_thread=False``) guarded by one lock, taken by
:meth:`Database.read` (a consistent read) and :meth:`Database.write` (one ``BEGIN IMMEDIATE``
transaction, rolled back on any exception). At this scale a lock is cheaper than a connection
per thread, and it makes each operation's read-check-write (e.g. "at most 20 files per
assistant") atomic without retry loops. Never wait for anything while holding it: a handler
that waits for a condition uses :meth:`Database.wait_for_change` between short reads.

Ordering: lists are ordered by ``(created_at, seq)`` where ``seq`` is the row's insertion
sequence (an ``INTEGER PRIMARY KEY AUTOINCREMENT``), so the order is total and stable even when
many objects share a ``created_at`` second. A table whose rows are deleted while a client may
hold their ids as cursors keeps them as tombstones (a ``deleted`` column, hidden from reads by
``visible``) so that the cursor still locates its position.

Errors the user's environment causes (not a database, unreadable, a directory that does not
exist, a read-only location) are raised as :class:`DatabaseUnavailable` with a plain message.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import sqlite3
import string
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from assistsync.server.framework.errors import SERVER_ERROR, ApiError, bad_request
from assistsync.server.framework.routing import encode_json

Json = dict[str, Any]
Clock = Callable[[], float]
"""Seconds since the epoch, as :func:`time.time`; injected so tests can drive time."""

_ALPHABET = string.ascii_letters + string.digits
MAX_LIST_LIMIT = 100
PAGE_PARAMS = ("limit", "order", "after", "before")
"""The query parameters of every cursor list."""


def new_id(prefix: str) -> str:
    """``prefix`` + 24 random alphanumerics, the shape of the hosted API's ids.

    The characters come from one read of the operating system's generator, each byte below
    248 (4 × 62) taken modulo 62 so that every character is equally likely (``secrets.choice``
    per character read it 24 times: ~17 µs per id, a tenth of a create).
    """
    chars = [_ALPHABET[b % 62] for b in secrets.token_bytes(32) if b < 248]
    while len(chars) < 24:  # fewer than 24 of 32 bytes usable: about once in a million
        chars += [_ALPHABET[b % 62] for b in secrets.token_bytes(32) if b < 248]
    return prefix + "".join(chars[:24])


def dumps(value: Any) -> str:
    """Compact JSON for a stored column (read back with :func:`loads`), as responses are
    encoded (:func:`~.framework.routing.encode_json`)."""
    return encode_json(value).decode()


def loads(text: str) -> Any:
    """A stored column's JSON (written by :func:`dumps`; orjson, or json for what it refuses)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class DatabaseUnavailable(Exception):
    """The database (or a directory beside it) cannot be opened or used; ``str()`` says why."""


@dataclass(frozen=True)
class Schema:
    """An endpoint group's tables: migration steps applied once each, in order."""

    name: str
    steps: tuple[str, ...]


_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"""


class Database:
    """The server's SQLite database, shared by every endpoint group; thread-safe."""

    def __init__(
        self, path: Path | None, schemas: Sequence[Schema], clock: Clock = time.time
    ) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(threading.Lock())
        self._generation = 0
        self._dirs: dict[str, Path] = {}
        self._temp_root: Path | None = None
        if path is None:
            target = ":memory:"
        else:
            if not path.parent.is_dir():
                # Creating missing parents would hide a typo in the path until the data is
                # looked for elsewhere.
                raise DatabaseUnavailable(
                    f"cannot open the database {path}: the directory {path.parent} does not "
                    "exist; create it first, or choose another --db path"
                )
            target = str(path)
        try:
            # isolation_level=None: transactions are explicit (see write), never implicit.
            self._db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(_explain(path, exc)) from None
        try:
            self._db.row_factory = sqlite3.Row
            if path is not None:
                # WAL + NORMAL: a committed change survives a process crash; an OS crash may
                # lose the last few, an acceptable trade for a development server's speed.
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate(schemas)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise DatabaseUnavailable(_explain(path, exc)) from None

    def _migrate(self, schemas: Sequence[Schema]) -> None:
        self._db.executescript(_VERSIONS)
        for schema in schemas:
            row = self._db.execute(
                "SELECT version FROM schema_versions WHERE name = ?", (schema.name,)
            ).fetchone()
            done = int(row["version"]) if row is not None else 0
            for number, step in enumerate(schema.steps[done:], start=done + 1):
                # executescript commits first and runs the script outside any transaction,
                # so each step is wrapped explicitly: a step and its version record land together.
                self._db.executescript(
                    f"BEGIN IMMEDIATE;\n{step}\n"
                    "INSERT INTO schema_versions (name, version) VALUES "
                    f"('{_sql_name(schema.name)}', {number}) "
                    "ON CONFLICT (name) DO UPDATE SET version = excluded.version;\nCOMMIT;"
                )

    def directory(self, name: str) -> Path:
        """A directory for this database's bulk data (e.g. file contents), created on demand.

        ``<db>.<name>/`` beside a database file; a private temporary directory in memory mode
        (deleted on :meth:`close`).
        """
        found = self._dirs.get(name)
        if found is not None:
            return found
        if self.path is None:
            if self._temp_root is None:
                self._temp_root = Path(tempfile.mkdtemp(prefix="assistsync-server-"))
            found = self._temp_root / name
        else:
            found = self.path.with_name(f"{self.path.name}.{name}")
        try:
            found.mkdir(exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                f"cannot create the directory {found}: {exc.strerror or exc}"
            ) from None
        self._dirs[name] = found
        return found

    def now(self) -> int:
        """The current time in Unix seconds, from the injected clock."""
        return int(self.clock())

    def close(self) -> None:
        """Close the database; in memory mode also delete its directories."""
        with self._lock:
            self._db.close()
            if self._temp_root is not None:
                shutil.rmtree(self._temp_root, ignore_errors=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection for a consistent read (the lock is held; do not write)."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.OperationalError as exc:
                mapped = _environment_error(self.path, exc, "read")
                if mapped is None:
                    raise
                raise mapped from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction: committed at the end, rolled back on any exception.

        Waiters in :meth:`wait_for_change` are woken after the commit.
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                    self._db.execute("COMMIT")
                except BaseException:
                    # SQLite has already rolled back after some errors (e.g. a full disk).
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                mapped = _environment_error(self.path, exc, "write")
                if mapped is None:
                    raise
                raise mapped from exc
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    @property
    def generation(self) -> int:
        """How many write transactions have committed; read it before checking a condition."""
        with self._changed:
            return self._generation

    def wait_for_change(self, generation: int, timeout: float) -> int:
        """Block until a write commits after ``generation`` (or ``timeout`` seconds pass).

        Returns the current generation. The pattern for a handler that waits briefly::

            deadline = time.monotonic() + 2.0
            seen = db.generation          # read before checking, so no commit is missed
            while not changed_enough() and (left := deadline - time.monotonic()) > 0:
                seen = db.wait_for_change(seen, left)
        """
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout)
            return self._generation


def _sql_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"schema name {name!r} must be a lower-case identifier")
    return name


def _environment_error(
    path: Path | None, exc: sqlite3.OperationalError, verb: str
) -> ApiError | None:
    """A read or write the server's environment refused, as the API error a client should see
    (None: not the environment's doing, so a bug of ours the HTTP layer logs as one)."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        # Another process holds the database (e.g. a second server on the same --db file).
        return ApiError(
            503,
            f"The server's database is busy ({text}); retry the request. If this persists, "
            "check that no other process uses the same database file.",
            type=SERVER_ERROR,
        )
    if any(word in text for word in ("full", "readonly", "I/O", "unable to open")):
        return ApiError(
            500,
            f"The server cannot {verb} its database {path or '(in memory)'}: {text}. Its "
            "operator must free space or fix the file's permissions; nothing was changed.",
            type=SERVER_ERROR,
        )
    return None


def _explain(path: Path | None, exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "file is not a database" in text:
        return f"{path} is not an assistsync server database (SQLite says: {text})"
    if "readonly" in text or "unable to open" in text:
        return f"cannot write the database {path}: {text}; choose a writable location"
    return f"cannot use the database {path}: {text}"


# -- cursor paging --------------------------------------------------------------------------------


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


def parse_page(params: Mapping[str, str]) -> PageQuery:
    """``limit``/``order``/``after``/``before`` of a cursor list (other keys ignored), validated."""
    limit = 20
    if "limit" in params:
        raw = params["limit"]
        if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIST_LIMIT:
            raise bad_request(
                f"Invalid 'limit': expected an integer between 1 and {MAX_LIST_LIMIT}, "
                f"but got {raw!r}.",
                "limit",
            )
        limit = int(raw)
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request(f"Invalid 'order': expected 'asc' or 'desc', but got {order!r}.", "order")
    return PageQuery(
        limit=limit,
        order="asc" if order == "asc" else "desc",
        after=params.get("after"),
        before=params.get("before"),
    )


def page(db: sqlite3.Connection, render: Callable[[sqlite3.Row], Json], **where: Any) -> Page:
    """One page of :func:`page_rows` (same keyword arguments), each row rendered."""
    rows, has_more = page_rows(db, **where)
    return Page([render(row) for row in rows], has_more)


def page_rows(
    db: sqlite3.Connection,
    *,
    table: str,
    id_column: str = "id",
    scope: str = "1 = 1",
    scope_args: Sequence[Any] = (),
    visible: str = "1 = 1",
    visible_args: Sequence[Any] = (),
    query: PageQuery,
    noun: str,
) -> tuple[list[sqlite3.Row], bool]:
    """Rows of one page ordered by ``(created_at, seq)`` plus whether more lie beyond.

    ``table`` needs ``seq`` and ``created_at`` columns. ``scope`` (SQL with ``?`` for
    ``scope_args``) restricts both the rows and the cursor lookup (e.g. one thread's messages);
    ``visible`` (with ``visible_args``) only the rows, so a tombstoned or filtered-out cursor
    still marks a position. An unknown cursor is a 400 naming ``noun``.
    """
    ascending = query.order == "asc"
    conds = [scope, visible]
    args: list[Any] = [*scope_args, *visible_args]
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
    # Paging backwards (before without after) reads from the cursor outwards, then flips the
    # rows back into the requested order.
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
