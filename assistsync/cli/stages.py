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
    """Load, read the lock, fetch the live state, and plan. Read-only."""
    from assistsync.fetch import fetch_live
    from assistsync.lockfile import read_lock
    from assistsync.planner import make_plan

    project = project or load(settings)
    lock = read_lock(project.lock_path)
    live = fetch_live(client, project.desired, lock)
    return Planned(project, lock, live, make_plan(project.desired, live, lock))
