"""The one pipeline both front ends run: load -> fetch -> plan (``Planned``); apply
(``start_apply``: a ``Background`` whose ``result()`` is the ``ApplyResult``).

The CLI (``assistsync.cli``) and the GitHub Action (``assistsync.github``) call these
functions in-process and report from the values they return; neither parses the other's
text. Nothing here prints, prompts or exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistsync.errors import AssistsyncError
from assistsync.lockfile import check_location, check_writable, exclusive, read_lock, write_lock
from assistsync.manifest import Project, load_project, locate_lock
from assistsync.model import TAG_KEY, Live, Lock, Plan
from assistsync.model.config import local_tag
from assistsync.planner import make_plan, prepare

if TYPE_CHECKING:
    # The HTTP side (httpx, the client, the applier) is imported where it is first used, so
    # that `validate`, which only loads, never pays for it.
    from assistsync.api import ApiClient
    from assistsync.applier import Background, Event


@dataclass(frozen=True)
class Planned:
    """Everything a plan was computed from, and the plan."""

    project: Project
    lock: Lock
    live: Live
    plan: Plan


def load(root: Path, environment: str | None = None) -> Project:
    """Load and validate the project in ``root`` (raises ``ManifestError`` with every
    problem), as ``environment`` when it declares environments, and check that its lock file
    lies inside it. What it loads is cached in ``.assistsync/cache/`` (see ``load_project``)."""
    project = load_project(root.resolve(), environment=environment, cache=True)
    check_location(project.root, project.lock_path)
    return project


def lock_path(root: Path, environment: str | None = None) -> Path:
    """The project's (or the environment's) lock file, from ``assistsync.yaml`` alone,
    checked to lie inside it."""
    resolved = root.resolve()
    path = locate_lock(resolved, environment=environment)
    check_location(resolved, path)
    return path


def plan(
    client: ApiClient,
    root: Path,
    *,
    endpoint: str = "",
    project: Project | None = None,
    environment: str | None = None,
) -> Planned:
    """Load, read the lock, fetch the live state, and plan. Read-only.

    When the project is not loaded yet, the account is listed in the background while the
    manifests load: the listing is mostly waiting on the network, loading is local work.
    ``endpoint`` names the API in the plan (a saved plan is only applied against it).
    """
    from assistsync.fetch import BackgroundListing, fetch_live

    listing = prepared = lock = None
    if project is None:
        background = BackgroundListing(client)
        project = load(root, environment)
        # local work while the listing waits on the network
        prepared = prepare(project.desired)
        with suppress(AssistsyncError):  # read again below, so that a listing error comes first
            lock = read_lock(project.lock_path)
        listing = background.result()
    if lock is None:
        lock = read_lock(project.lock_path)
    live = in_environment(fetch_live(client, project.desired, lock, listing), project.environment)
    made = make_plan(
        project.desired,
        live,
        lock,
        root=str(project.root),
        endpoint=endpoint or client.base_url,
        prepared=prepared,
    )
    if project.environment:
        made = made.model_copy(update={"environment": project.environment})
    return Planned(project, lock, live, made)


def in_environment(live: Live, environment: str | None) -> Live:
    """The live state as one environment sees it: its own tags (``key@env``) read as plain
    keys, every other tag removed, so the planner's ownership rules hold per environment
    (another environment's assistants on the same server are never imported or changed)."""
    if not environment:
        return live
    assistants = []
    for a in live.assistants:
        if a.tag is not None:
            key = local_tag(a.tag, environment)
            metadata = {k: v for k, v in a.metadata.items() if k != TAG_KEY}
            if key is not None:
                metadata[TAG_KEY] = key
            a = a.model_copy(update={"metadata": metadata})
        assistants.append(a)
    return live.model_copy(update={"assistants": tuple(assistants)})


@contextmanager
def writing(root: Path, environment: str | None = None) -> Iterator[Path]:
    """Hold the project's one-writer lock (see ``lockfile.exclusive``); yields the lock path.

    Taken before the live state is read, so nothing another apply does can slip in between.
    """
    path = lock_path(root, environment)
    with exclusive(path):
        yield path


def start_apply(
    client: ApiClient,
    plan: Plan,
    lock_file: Path,
    *,
    concurrency: int | None = None,
    events: Callable[[Event], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Background:
    """Carry out ``plan`` on a thread of its own, writing the lock to ``lock_file`` after
    every change, ``concurrency`` changes at a time (``None``: the applier's default); returns
    at once (``Background.result()`` waits for the ``ApplyResult``). Lets an approved apply
    run while its plan is still being printed.

    Raises ``LockWriteError`` before any change when the lock cannot be written. Call it
    inside ``writing``.
    """
    from assistsync.applier import DEFAULT_CONCURRENCY, Applier

    check_writable(lock_file)
    return Applier(
        client,
        plan,
        save=lambda lock: write_lock(lock_file, lock),
        concurrency=DEFAULT_CONCURRENCY if concurrency is None else concurrency,
        events=events,
        clock=clock,
    ).start()
