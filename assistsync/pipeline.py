"""The one pipeline both front ends run: load -> fetch -> plan (``Planned``); apply
(``ApplyResult``).

The CLI (``assistsync.cli``) and the GitHub Action (``assistsync.github``) call these
functions in-process and report from the values they return; neither parses the other's
text. Nothing here prints, prompts or exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistsync.api import ApiClient
from assistsync.applier import DEFAULT_CONCURRENCY, Applier, ApplyResult, Event
from assistsync.fetch import BackgroundListing, fetch_live
from assistsync.lockfile import check_location, check_writable, exclusive, read_lock, write_lock
from assistsync.manifest import Project, load_project, locate_lock
from assistsync.model import Live, Lock, Plan
from assistsync.planner import make_plan


@dataclass(frozen=True)
class Planned:
    """Everything a plan was computed from, and the plan."""

    project: Project
    lock: Lock
    live: Live
    plan: Plan


def load(root: Path) -> Project:
    """Load and validate the project in ``root`` (raises ``ManifestError`` with every
    problem), and check that its lock file lies inside it."""
    project = load_project(root.resolve())
    check_location(project.root, project.lock_path)
    return project


def lock_path(root: Path) -> Path:
    """The project's lock file, from ``assistsync.yaml`` alone, checked to lie inside it."""
    resolved = root.resolve()
    path = locate_lock(resolved)
    check_location(resolved, path)
    return path


def plan(
    client: ApiClient, root: Path, *, endpoint: str = "", project: Project | None = None
) -> Planned:
    """Load, read the lock, fetch the live state, and plan. Read-only.

    When the project is not loaded yet, the account is listed in the background while the
    manifests load: the listing is mostly waiting on the network, loading is local work.
    ``endpoint`` names the API in the plan (a saved plan is only applied against it).
    """
    listing = None
    if project is None:
        background = BackgroundListing(client)
        project = load(root)
        listing = background.result()
    lock = read_lock(project.lock_path)
    live = fetch_live(client, project.desired, lock, listing)
    made = make_plan(
        project.desired, live, lock, root=str(project.root), endpoint=endpoint or client.base_url
    )
    return Planned(project, lock, live, made)


@contextmanager
def writing(root: Path) -> Iterator[Path]:
    """Hold the project's one-writer lock (see ``lockfile.exclusive``); yields the lock path.

    Taken before the live state is read, so nothing another apply does can slip in between.
    """
    path = lock_path(root)
    with exclusive(path):
        yield path


def apply(
    client: ApiClient,
    plan: Plan,
    lock_file: Path,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    events: Callable[[Event], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ApplyResult:
    """Carry out ``plan``, writing the lock to ``lock_file`` after every change.

    Raises ``LockWriteError`` before any change when the lock cannot be written. Call it
    inside ``writing``.
    """
    check_writable(lock_file)
    return Applier(
        client,
        plan,
        save=lambda lock: write_lock(lock_file, lock),
        concurrency=concurrency,
        events=events,
        clock=clock,
    ).run()
