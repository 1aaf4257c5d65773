"""The endpoint groups the server serves, in order; the route table is their concatenation.

The order matters twice: schemas are applied in it (a group may reference tables of a group
listed before it), and ``assistsync server --help`` lists the groups in it.
"""

from __future__ import annotations

from assistsync.server import assistant_files, assistants, files, index, messages, threads
from assistsync.server.framework.routing import Route
from assistsync.server.group import Context, Group
from assistsync.server.retrieval import group as retrieval
from assistsync.server.runs import endpoints as runs

GROUPS: tuple[Group, ...] = (
    files.GROUP,
    retrieval.GROUP,  # its trigger follows deletions of files
    assistants.GROUP,
    assistant_files.GROUP,
    threads.GROUP,
    messages.GROUP,
    runs.GROUP,
    index.GROUP,
)
"""Every endpoint group, in schema and help order."""


def route_table(groups: tuple[Group, ...] = GROUPS) -> tuple[Route[Context], ...]:
    """Every operation of ``groups``, as (method, path template, handler) rows."""
    return tuple(route for group in groups for route in group.routes)


ROUTES = route_table()
"""Every operation the server implements."""
