"""The embedded Assistants API v1 server: a faithful, fault-injectable local stand-in.

It imports nothing else from assistsync, so the client and the server cannot share a
misunderstanding of the wire contract (the published OpenAPI spec of April 2024).

Public API::

    from assistsync.server import Faults, ServerHandle, start_server

    with start_server(port=0, db=None, api_key=None, faults=Faults()) as handle:
        handle.base_url          # "http://127.0.0.1:<port>/v1"
        handle.faults.fail_next = 1
        handle.stats.requests

Layers (a test enforces who imports whom):

- :mod:`.framework` — HTTP only, no domain: routing, request/response values, body framing,
  streamed (``text/event-stream``) responses, the error envelope, faults, auth. Imports
  nothing else from the server.
- :mod:`.db` — the SQLite database: connection and transactions across threads, per-group
  schemas and migrations, cursor paging, ids, the clock. Imports only the framework (errors).
- :mod:`.group` and :mod:`.common` — what an endpoint group is (:class:`~.group.Group`), what
  its handlers receive (:class:`~.group.Context`, hooks between groups), and request fields
  several groups share (tools, metadata, paging parameters).
- endpoint groups, one module (or package) each, with its routes, request models and queries:
  :mod:`.files` (with :mod:`.uploads`), :mod:`.assistants`, :mod:`.assistant_files`,
  :mod:`.threads`, :mod:`.messages`. A group imports the framework, the db layer, ``group``
  and ``common``, and the groups it builds on (assistants check files; messages check
  threads), never the composition root.
- the composition root: :mod:`.routes` (the list of groups; the route table is their
  concatenation), :mod:`.app` (:func:`start_server`, :func:`serve_forever`) and
  :mod:`.command` (the click command, whose ``--help`` is generated from the groups).

Adding an endpoint group:

1. Create ``assistsync/server/<name>.py`` (or a package). Declare its tables as a
   :class:`~.db.Schema` (``Schema("<name>", (step1_sql, ...))``: steps run once each, in order;
   to change a table later, append a step, never edit one). Tables listed by a cursor API need
   ``seq INTEGER PRIMARY KEY AUTOINCREMENT`` and ``created_at``; page them with
   :func:`~.db.page_rows` and render with :class:`~.db.Page`.
2. Write handlers ``(Request[Context]) -> Response``: parse with
   :func:`~.framework.validation.validate` (pydantic models on :class:`~.common.Body`) and
   :func:`~.common.page_query` / :func:`~.common.plain`; read with
   ``request.context.db.read()`` and write with ``request.context.db.write()`` (one
   transaction); time comes from ``db.now()``, ids from :func:`~.db.new_id`; fail by raising
   :class:`~.framework.errors.ApiError` (``bad_request(message, param)``, ``not_found``). For
   a stream, return :func:`~.framework.routing.event_stream` over an iterator of bytes framed
   with :func:`~.framework.routing.sse_event`. A handler that waits for a condition (a long
   poll) re-checks it after each :meth:`~.db.Database.wait_for_change`, holding no lock.
3. Export ``GROUP = Group(title, routes=(Route(...), ...), schema=SCHEMA, notes=(...),
   start=...)``; ``start(context)`` may install hooks (``context.hooks``) and start worker
   threads, returning a function that stops them.
4. Add ``GROUP`` to :data:`.routes.GROUPS` (after the groups whose tables it references) and
   the module to the server layers in ``tests/unit/test_architecture.py``. ``--help`` and the
   route table follow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistsync.server.app import (
        DEFAULT_MAX_UPLOAD_BYTES,
        ServerHandle,
        serve_forever,
        start_server,
    )
    from assistsync.server.db import DatabaseUnavailable
    from assistsync.server.framework.faults import Faults, Stats

# Loaded on first use (PEP 562), so that the CLI can register the `server` command and answer
# `--help` without importing the server's validation models and storage.
_HOMES = {
    "DEFAULT_MAX_UPLOAD_BYTES": "assistsync.server.app",
    "ServerHandle": "assistsync.server.app",
    "serve_forever": "assistsync.server.app",
    "start_server": "assistsync.server.app",
    "DatabaseUnavailable": "assistsync.server.db",
    "Faults": "assistsync.server.framework.faults",
    "Stats": "assistsync.server.framework.faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'assistsync.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "DatabaseUnavailable",
    "Faults",
    "ServerHandle",
    "Stats",
    "serve_forever",
    "start_server",
]
