"""Retrieval over uploaded files: extraction, chunking and a BM25 index in the server's SQLite.

This package is a library for the files endpoint and the run engine; it imports nothing else
from assistsync and knows nothing of HTTP. The flow::

    upload received --check_upload(name)--> (400 early on an unknown extension)
        --prepare(name, bytes)--> Prepared  (pure CPU work, outside any lock; raises FileRejected)
        --store(conn, file_id, prepared)--> rows, in the transaction that creates the file row
    file deleted --remove_file(conn, file_id)--> gone from every search
    run with retrieval --search(conn, file_ids, question, k)--> [Passage], each an exact slice

``index_file`` is ``prepare`` + ``store`` in one call. Schema: ``create_schema(conn)``.
"""

from __future__ import annotations

from assistsync.server.retrieval.chunking import Chunk, chunk_text
from assistsync.server.retrieval.errors import (
    FileRejected,
    NotRetrievable,
    UnreadableFile,
    UnsupportedFileType,
)
from assistsync.server.retrieval.extract import (
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
    index_file,
    is_indexed,
    match_expression,
    prepare,
    query_terms,
    remove_file,
    search,
    store,
)

__all__ = [
    "RETRIEVABLE_FORMATS",
    "UPLOAD_FORMATS",
    "Chunk",
    "Extracted",
    "FileRejected",
    "Kind",
    "NotRetrievable",
    "Passage",
    "Prepared",
    "UnreadableFile",
    "UnsupportedFileType",
    "check_upload",
    "chunk_text",
    "create_schema",
    "extract",
    "index_file",
    "is_indexed",
    "is_retrievable",
    "match_expression",
    "not_retrievable_message",
    "prepare",
    "query_terms",
    "remove_file",
    "search",
    "store",
]
