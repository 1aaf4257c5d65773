"""What an endpoint group is, and what every request of one is given.

An endpoint group (``assistants``, ``files``, ``threads``, ...) is one module (or package) that
exports a :class:`Group`: its routes, its tables (:class:`~.db.Schema`), and optionally code to
run while the server runs (workers). :mod:`.routes` lists the groups; the route table, the
database schema and ``assistsync server --help`` are all built from that list.

Handlers receive ``Request[Context]``: ``request.context`` is the one :class:`Context` of the
server (database, settings, hooks). Groups never keep module-level state, because a process
may run many servers at once (tests do).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistsync.server.db import Database, Schema
from assistsync.server.framework.routing import Route

ActiveRunLookup = Callable[[sqlite3.Connection, str], str | None]
"""``(connection, thread_id) -> run id | None``: the run that is active on a thread, if any.

Called inside the write transaction that is about to add a message to the thread, so the check
and the insert are atomic. The runs group installs its own in :attr:`Hooks.active_run`.
"""


def no_active_run(db: sqlite3.Connection, thread_id: str) -> str | None:
    """The lookup used until a group that runs things installs one: nothing is ever active."""
    return None


@dataclass
class Hooks:
    """Functions one group provides for another to call (set from a group's ``start``)."""

    active_run: ActiveRunLookup = no_active_run
    """Messages refuse new user messages on a thread with an active run (the hosted 400)."""


@dataclass
class Context:
    """Everything a handler may use besides its request."""

    db: Database
    max_upload_bytes: int
    """The largest file ``POST /files`` accepts, in bytes."""
    hooks: Hooks = field(default_factory=Hooks)
    services: dict[str, Any] = field(default_factory=dict)
    """Per-server objects a group's handlers share, set by its ``start`` (e.g. the run engine
    under ``"runs"``)."""


Stop = Callable[[], None]


@dataclass(frozen=True)
class Group:
    """One endpoint group.

    ``title`` heads its lines in ``--help`` (e.g. ``"assistant files"``); ``notes`` are extra
    help lines. ``schema`` is applied before the server starts (groups in :mod:`.routes` order,
    so a group may reference the tables of one listed before it). ``start`` runs once the
    database is ready, before the first request; it may install hooks and start workers, and
    returns a function that stops them (called before the database closes), or None.
    """

    title: str
    routes: tuple[Route[Context], ...]
    schema: Schema | None = None
    notes: tuple[str, ...] = ()
    start: Callable[[Context], Stop | None] | None = None
