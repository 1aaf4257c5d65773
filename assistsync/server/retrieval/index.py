"""The index: chunks in the server's own SQLite database, ranked by FTS5's BM25.

Three tables, declared by :data:`TABLES` (registered with the server's database layer by
:mod:`.group`; :func:`create_schema` creates them on a bare connection): ``retrieval_files``
(one row per indexed file), ``retrieval_chunks`` (each chunk's file, offsets and text) and
``retrieval_fts``, an FTS5 index over the chunk text that stores no copy of it
(``content=retrieval_chunks``). Tokens are Unicode words with diacritics folded and Porter
stemming, so "refunds" finds "refund" and "cafe" finds "café".

None of these functions begins or commits a transaction: the caller's transaction (the
database layer's ``write()``) makes indexing a file atomic with creating its row, and removal
with deleting it. CPU work (extraction, chunking) happens in :func:`prepare`, before any lock
is taken.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from assistsync.server.retrieval.chunking import Chunk, chunk_text
from assistsync.server.retrieval.errors import NotRetrievable
from assistsync.server.retrieval.extract import MAX_TEXT_CHARS, Kind, check_upload, extract

TABLES = """
CREATE TABLE IF NOT EXISTS retrieval_files (
    file_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    chars INTEGER NOT NULL,
    chunks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS retrieval_chunks (
    id INTEGER PRIMARY KEY,
    file_id TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retrieval_chunks_by_file ON retrieval_chunks (file_id);
CREATE VIRTUAL TABLE IF NOT EXISTS retrieval_fts USING fts5(
    text,
    content = 'retrieval_chunks',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""
"""The index's tables (idempotent SQL); the server applies it as step 1 of its schema."""

# Forgetting a file: an external-content FTS5 table forgets a row only when told its text.
_FORGET = (
    "INSERT INTO retrieval_fts (retrieval_fts, rowid, text) "
    "SELECT 'delete', id, text FROM retrieval_chunks WHERE file_id = {file_id}",
    "DELETE FROM retrieval_chunks WHERE file_id = {file_id}",
    "DELETE FROM retrieval_files WHERE file_id = {file_id}",
)

MAX_QUERY_TERMS = 32
"""A bound on a query's cost: a longer question is searched by its first 32 terms."""

# Words so common that they rank nothing but make every chunk a match.
_STOPWORD_TEXT = """
    a about above after again all also am an and any are as at be been before being below
    between both but by can could did do does doing down during each few for from further had
    has have having he her here hers him his how i if in into is it its itself just me more most
    my no nor not now of off on once only or other our ours out over own same she should so some
    such than that the their theirs them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    yours"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Letters and digits only: unicode61 splits on everything else (underscores too), so these are
# exactly the tokens FTS5 will see, and quoting each one makes every FTS5 operator inert.
_TERM = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file's extracted text and chunks, ready for :func:`store` (computed with no lock held)."""

    kind: Kind
    text: str
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class Passage:
    """A search hit: ``text`` is exactly the file's extracted text at ``[start, end)``.

    ``score`` is BM25 relevance, higher is better; it compares passages of one search only.
    """

    file_id: str
    chunk_id: int
    text: str
    score: float
    start: int
    end: int


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the retrieval tables on a bare connection if they do not exist (idempotent).

    The server registers :data:`TABLES` with its database layer instead (see :mod:`.group`),
    with a :func:`forget_trigger` so that deleting a file row removes it from the index.
    """
    conn.executescript(TABLES)


def forget_trigger(table: str, id_column: str) -> str:
    """SQL creating a trigger that removes a file from the index when its row in ``table``
    (whose ``id_column`` holds the file id) is deleted: :func:`remove_file`, run by SQLite."""
    body = "".join(
        f"    {statement.format(file_id='old.' + id_column)};\n" for statement in _FORGET
    )
    return (
        f"CREATE TRIGGER IF NOT EXISTS {table}_retrieval_forget AFTER DELETE ON {table} BEGIN\n"
        f"{body}END;"
    )


def prepare(filename: str, data: bytes, *, max_chars: int = MAX_TEXT_CHARS) -> Prepared:
    """Extract and chunk a file; raises the :class:`FileRejected` errors of :func:`extract`."""
    extracted = extract(filename, data, max_chars=max_chars)
    return Prepared(extracted.kind, extracted.text, chunk_text(extracted.text, extracted.kind))


def prepare_upload(filename: str, purpose: str, data: bytes) -> Prepared | None:
    """What ``POST /files`` indexes, as the hosted API decided it; ``None`` for nothing.

    Only purpose ``assistants`` is searched. Its files are refused with the hosted API's 400
    for an unknown extension (:class:`UnsupportedFileType`) and, since the index is built at
    upload, for unreadable content (:class:`UnreadableFile`) or too much text
    (:class:`TextTooLong`, which also bounds how long :func:`store` holds the database). Types
    retrieval does not read (images, archives, spreadsheets, slides) are accepted unindexed, as
    the hosted API accepted them for code interpreter; attaching one to an assistant with
    retrieval is the 400 of :func:`not_retrievable_message`.
    """
    if purpose != "assistants":
        return None
    check_upload(filename)
    try:
        return prepare(filename, data)
    except NotRetrievable:
        return None


def store(conn: sqlite3.Connection, file_id: str, prepared: Prepared) -> None:
    """Write a prepared file's chunks to the index, replacing any earlier index of ``file_id``."""
    remove_file(conn, file_id)
    conn.execute(
        "INSERT INTO retrieval_files (file_id, kind, chars, chunks) VALUES (?, ?, ?, ?)",
        (file_id, prepared.kind, len(prepared.text), len(prepared.chunks)),
    )
    rows = [(file_id, c.start, c.end, c.text) for c in prepared.chunks]
    conn.executemany(
        'INSERT INTO retrieval_chunks (file_id, start, "end", text) VALUES (?, ?, ?, ?)', rows
    )
    conn.execute(
        "INSERT INTO retrieval_fts (rowid, text) "
        "SELECT id, text FROM retrieval_chunks WHERE file_id = ?",
        (file_id,),
    )


def index_file(conn: sqlite3.Connection, file_id: str, filename: str, data: bytes) -> Prepared:
    """:func:`prepare` then :func:`store`: the whole indexing of one upload."""
    prepared = prepare(filename, data)
    store(conn, file_id, prepared)
    return prepared


def remove_file(conn: sqlite3.Connection, file_id: str) -> bool:
    """Drop a file from the index; whether it was indexed."""
    removed = 0
    for statement in _FORGET:
        removed = conn.execute(statement.format(file_id="?"), (file_id,)).rowcount
    return removed > 0  # the last statement deletes the file's own row


def is_indexed(conn: sqlite3.Connection, file_id: str) -> bool:
    """Whether ``file_id`` has been indexed (it may still have no chunks, e.g. an empty file)."""
    row = conn.execute("SELECT 1 FROM retrieval_files WHERE file_id = ?", (file_id,)).fetchone()
    return row is not None


def query_terms(question: str) -> list[str]:
    """The words of a question that are searched for: lower-cased, each once, in order.

    Stop words are left out unless nothing else remains; at most :data:`MAX_QUERY_TERMS`.
    """
    seen: dict[str, None] = {}
    for term in _TERM.findall(question):
        seen.setdefault(term.lower())
    terms = [t for t in seen if t not in _STOPWORDS] or list(seen)
    return terms[:MAX_QUERY_TERMS]


def _expression(terms: Sequence[str]) -> str:
    # Quoted, a term is a string to FTS5, never an operator (AND, NEAR, *, ^, column:...).
    return " OR ".join(f'"{term}"' for term in terms)


def match_expression(question: str) -> str | None:
    """A question as an FTS5 query that cannot be a syntax error: its terms, quoted, OR-ed.

    ``None`` when the question has no word at all.
    """
    terms = query_terms(question)
    return _expression(terms) if terms else None


def _informative(conn: sqlite3.Connection, terms: list[str]) -> list[str]:
    """The terms worth ranking by: those in fewer than half of all chunks.

    FTS5's BM25 floors the IDF of a term found in half the chunks or more at 1e-6, so such a
    term changes no ranking, yet every chunk it occurs in must be scored: "the", "is" and
    their like make a query slow for nothing. When every term is that common, the rarest one
    found (its ranking is as good as any); none when no term occurs at all.
    """
    total = conn.execute("SELECT coalesce(sum(chunks), 0) FROM retrieval_files").fetchone()[0]
    hits: dict[str, int] = {}
    for term in terms:
        (hits[term],) = conn.execute(
            "SELECT count(*) FROM retrieval_fts WHERE retrieval_fts MATCH ?", (_expression([term]),)
        ).fetchone()
    kept = [term for term in terms if hits[term] > 0 and 2 * hits[term] < total]
    found = [term for term in terms if hits[term]]
    return kept or sorted(found, key=hits.__getitem__)[:1]


def search(
    conn: sqlite3.Connection, file_ids: Sequence[str], query: str, k: int = 5
) -> list[Passage]:
    """The ``k`` passages of the files ``file_ids`` that best match ``query``, best first.

    ``query`` is free text (a user's question, punctuation and all). Files not indexed are
    simply absent from the results.
    """
    terms = query_terms(query)
    ids = list(dict.fromkeys(file_ids))
    if not terms or not ids or k < 1:
        return []
    if len(terms) > 1:
        informative = _informative(conn, terms)
        if not informative:
            return []  # no term occurs in any chunk
        if len(informative) < len(terms):
            passages = _ranked(conn, ids, informative, k)
            if len(passages) == k:
                return passages
            # Fewer than k chunks of these files hold those terms: rank the whole question, so
            # leaving out weightless terms never loses a passage that would have been found.
    return _ranked(conn, ids, terms, k)


def _ranked(
    conn: sqlite3.Connection, ids: list[str], terms: Sequence[str], k: int
) -> list[Passage]:
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        'SELECT c.file_id, c.id, c.text, bm25(retrieval_fts), c.start, c."end" '
        "FROM retrieval_fts JOIN retrieval_chunks AS c ON c.id = retrieval_fts.rowid "
        f"WHERE retrieval_fts MATCH ? AND c.file_id IN ({marks}) "
        "ORDER BY bm25(retrieval_fts), c.id LIMIT ?",
        (_expression(terms), *ids, k),
    ).fetchall()
    return [Passage(r[0], r[1], r[2], -r[3], r[4], r[5]) for r in rows]
