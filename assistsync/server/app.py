"""The composition root: database + endpoint groups + HTTP framework = a running server.

:func:`start_server` opens the database with every group's schema, starts the groups, and
serves their concatenated route table on a background thread; :func:`serve_forever` does the
same in the foreground for the ``assistsync server`` command.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from assistsync.server.db import Clock, Database
from assistsync.server.framework.faults import Faults, Stats
from assistsync.server.framework.http import BODY_IDLE_TIMEOUT_S, App, HttpServer, start_http
from assistsync.server.group import Context, Group, Stop
from assistsync.server.index import API_PREFIX
from assistsync.server.routes import GROUPS, route_table

DEFAULT_MAX_UPLOAD_BYTES = 512 * 1024 * 1024
"""The hosted API's per-file limit (512 MB)."""


class ServerHandle:
    """A running server: its URL, live faults and stats; :meth:`stop` (or ``with``) ends it."""

    def __init__(self, http: HttpServer, app: App[Context], stops: list[Stop]) -> None:
        self._http = http
        self._app = app
        self._stops = stops
        self._stopped = False
        self.host = http.host
        self.port = http.port
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{shown}:{self.port}/v1"
        """The API root clients are pointed at, e.g. ``http://127.0.0.1:8787/v1``."""

    @property
    def context(self) -> Context:
        """What every handler sees: the database, settings and hooks."""
        return self._app.context

    @property
    def faults(self) -> Faults:
        """The live fault configuration; assign its attributes to change behaviour."""
        return self._app.faults

    @property
    def stats(self) -> Stats:
        """Requests received so far (``requests``, ``by_route``, ``reset()``)."""
        return self._app.stats

    def stop(self) -> None:
        """Stop accepting, close open connections, wait for handlers, stop the groups' work,
        close the database. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._http.stop(timeout=10)
        for stop in reversed(self._stops):
            stop()
        self._app.context.db.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _ignore(_: str) -> None:
    pass


def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    db: Path | None = None,
    api_key: str | None = None,
    faults: Faults | None = None,
    log: Callable[[str], None] | None = None,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    clock: Clock = time.time,
    groups: Sequence[Group] = GROUPS,
    body_idle_timeout_s: float = BODY_IDLE_TIMEOUT_S,
) -> ServerHandle:
    """Start an Assistants API v1 server on a background thread and return its handle.

    ``port=0`` picks a free port (read it from ``handle.base_url``). ``db=None`` keeps
    everything in memory; a path persists every object (file contents in ``<db>.files/``)
    across restarts. ``api_key=None`` accepts any non-empty bearer key. ``faults`` is used
    live (the handle exposes the same object). ``log`` receives one line per request,
    ``METHOD PATH STATUS ms``, plus tracebacks of unexpected errors. ``max_upload_bytes`` caps
    a single uploaded file. ``clock`` gives the time (Unix seconds) for every timestamp.
    ``groups`` are the endpoint groups to serve (default: all of them).
    ``body_idle_timeout_s`` bounds the wait for the next bytes of a request body (a client
    sending less than its Content-Length is disconnected after it).

    Raises :class:`~assistsync.server.db.DatabaseUnavailable` when ``db`` cannot be used and
    :class:`OSError` when the address cannot be served.
    """
    if api_key is not None and not api_key:
        raise ValueError("api_key must be None (accept any key) or a non-empty string")
    if max_upload_bytes < 1:
        raise ValueError("max_upload_bytes must be positive")
    if body_idle_timeout_s <= 0:
        raise ValueError("body_idle_timeout_s must be positive")
    groups = tuple(groups)
    database = Database(db, [g.schema for g in groups if g.schema is not None], clock=clock)
    context = Context(db=database, max_upload_bytes=max_upload_bytes)
    stops: list[Stop] = []
    try:
        for group in groups:
            if group.start is not None and (stop := group.start(context)) is not None:
                stops.append(stop)
        app = App(
            context,
            route_table(groups),
            faults or Faults(),
            api_key,
            log or _ignore,
            api_prefix=API_PREFIX,
            body_idle_timeout_s=body_idle_timeout_s,
        )
        http = start_http(app, host, port)
    except BaseException:
        for stop in reversed(stops):
            stop()
        database.close()
        raise
    return ServerHandle(http, app, stops)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve_forever(
    host: str,
    port: int,
    db: Path | None,
    api_key: str | None,
    faults: Faults,
    log: Callable[[str], None],
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    groups: Sequence[Group] = GROUPS,
) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM, then shut down cleanly and return.

    Blocks the calling thread; meant for the ``assistsync server`` command.
    """
    handle = start_server(
        host, port, db, api_key, faults, log, max_upload_bytes=max_upload_bytes, groups=groups
    )
    storage = f"data in {db}" if db is not None else "data in memory, lost on exit"
    log(f"assistsync server: Assistants API v1 at {handle.base_url} ({storage}); Ctrl-C stops it")
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        # A container or supervisor stops a process with SIGTERM: shut down as for Ctrl-C.
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        handle.stop()
        log("assistsync server: stopped")
