"""The retrieval index as one of the server's groups: its tables, and nothing to route.

The only module of this package that knows the server: it registers the index's tables with
the database layer (listed after the ``files`` group, whose deletions it follows by trigger,
so a deleted file leaves every search in the same transaction). Endpoints reach the index
through the package's functions (see :mod:`assistsync.server.retrieval`).
"""

from __future__ import annotations

from assistsync.server.db import Schema
from assistsync.server.group import Group
from assistsync.server.retrieval.index import TABLES, forget_trigger

SCHEMA = Schema("retrieval", (TABLES, forget_trigger("files", "id")))
"""Migration steps, applied once each in order: append a step to change a table, never edit."""

GROUP = Group(
    title="retrieval",
    routes=(),
    schema=SCHEMA,
    notes=("search index of files for the retrieval tool (SQLite FTS5), no endpoints",),
)
