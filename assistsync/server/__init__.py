"""The embedded Assistants API v1 server: a faithful, fault-injectable local stand-in.

It imports nothing else from assistsync, so the client and the server cannot share a
misunderstanding of the wire contract (the published OpenAPI spec of April 2024).

Public API::

    from assistsync.server import Faults, ServerHandle, start_server

    with start_server(port=0, db=None, api_key=None, faults=Faults()) as handle:
        handle.base_url          # "http://127.0.0.1:<port>/v1"
        handle.faults.fail_next = 1
        handle.stats.requests

Modules: :mod:`.app` (HTTP, faults, auth, entry points), :mod:`.routes` (the route table and
one handler per operation), :mod:`.routing` (request/response values, body framing),
:mod:`.schemas` (request validation), :mod:`.uploads` (streaming multipart), :mod:`.store`
(SQLite storage), :mod:`.faults`, :mod:`.errors`, and :mod:`.command` (the click command).
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
    from assistsync.server.faults import Faults, Stats

# Loaded on first use (PEP 562), so that the CLI can register the `server` command and answer
# `--help` without importing the server's validation models and storage.
_HOMES = {
    "DEFAULT_MAX_UPLOAD_BYTES": "assistsync.server.app",
    "ServerHandle": "assistsync.server.app",
    "serve_forever": "assistsync.server.app",
    "start_server": "assistsync.server.app",
    "Faults": "assistsync.server.faults",
    "Stats": "assistsync.server.faults",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'assistsync.server' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "Faults",
    "ServerHandle",
    "Stats",
    "serve_forever",
    "start_server",
]
