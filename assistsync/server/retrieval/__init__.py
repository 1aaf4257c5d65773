"""Retrieval over uploaded files: extraction, chunking and a BM25 index in the server's SQLite.

A library for the files endpoint and the run engine: it knows nothing of HTTP, and only
:mod:`.group` (which registers its tables with the database layer) imports the server. The
flow, each step with the function to call::

    POST /files received  -- prepare_upload(name, purpose, data) -> Prepared | None
                             (check_upload + prepare: pure CPU work, before any lock; raises
                             FileRejected, whose message and param are the hosted API's 400)
      -> store(db, file_id, prepared)                        in the transaction creating the row
    DELETE /files/{id}    -- (trigger on ``files``)          removed with the row, same transaction
    run with retrieval    -- search(db, file_ids, question, k) -> [Passage]
                             each Passage.text == extracted_text[start:end], quotable as is

``index_file`` is ``prepare`` + ``store``; ``remove_file`` forgets a file explicitly;
``create_schema`` creates the tables on a bare connection (tests, benchmarks).
"""

from __future__ import annotations

from assistsync.server.retrieval.chunking import Chunk, chunk_text
from assistsync.server.retrieval.errors import (
    FileRejected,
    NotRetrievable,
    TextTooLong,
    UnreadableFile,
    UnsupportedFileType,
)
from assistsync.server.retrieval.extract import (
    MAX_TEXT_CHARS,
    RETRIEVABLE_FORMATS,
    UPLOAD_FORMATS,
    Extracted,
    Kind,
    check_upload,
    extract,
    is_retrievable,
    not_retrievable_message,
)
from assistsync.server.retrieval.index import (
    Passage,
    Prepared,
    create_schema,
    forget_trigger,
    index_file,
    is_indexed,
    match_expression,
    prepare,
    prepare_upload,
    query_terms,
    remove_file,
    search,
    store,
)

__all__ = [
    "MAX_TEXT_CHARS",
    "RETRIEVABLE_FORMATS",
    "UPLOAD_FORMATS",
    "Chunk",
    "Extracted",
    "FileRejected",
    "Kind",
    "NotRetrievable",
    "Passage",
    "Prepared",
    "TextTooLong",
    "UnreadableFile",
    "UnsupportedFileType",
    "check_upload",
    "chunk_text",
    "create_schema",
    "extract",
    "forget_trigger",
    "index_file",
    "is_indexed",
    "is_retrievable",
    "match_expression",
    "not_retrievable_message",
    "prepare",
    "prepare_upload",
    "query_terms",
    "remove_file",
    "search",
    "store",
]
