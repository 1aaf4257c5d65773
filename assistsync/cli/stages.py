"""The stages every command chains: load -> read lock -> fetch -> plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistsync.cli.context import Settings

if TYPE_CHECKING:
    from assistsync.api import ApiClient
    from assistsync.manifest import Project
    from assistsync.model import Live, Lock, Plan


@dataclass(frozen=True)
class Planned:
    """Everything a plan was computed from, and the plan."""

    project: Project
    lock: Lock
    live: Live
    plan: Plan


def load(settings: Settings) -> Project:
    """Load and validate the project's manifests (raises ``ManifestError`` with every problem)."""
    from assistsync.manifest import load_project

    return load_project(settings.root.resolve())


def compute(settings: Settings, client: ApiClient, project: Project | None = None) -> Planned:
    """Load, read the lock, fetch the live state, and plan. Read-only.

    When the project is not loaded yet, the account is listed in the background while the
    manifests load: the listing is mostly waiting on the network, loading is local work.
    """
    from assistsync.fetch import BackgroundListing, fetch_live
    from assistsync.lockfile import read_lock
    from assistsync.planner import make_plan

    listing = None
    if project is None:
        background = BackgroundListing(client)
        project = load(settings)
        listing = background.result()
    lock = read_lock(project.lock_path)
    live = fetch_live(client, project.desired, lock, listing)
    return Planned(project, lock, live, make_plan(project.desired, live, lock))
