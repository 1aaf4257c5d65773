"""The stages every command chains, for the CLI: ``assistsync.pipeline`` with ``Settings``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistsync.cli.context import Settings

if TYPE_CHECKING:
    from assistsync.manifest import Project


def load(settings: Settings) -> Project:
    """Load and validate the project's manifests (raises ``ManifestError`` with every problem)."""
    from assistsync import pipeline

    return pipeline.load(settings.root)


def endpoint(settings: Settings, base_url: str) -> str:
    """The endpoint a plan records: the API's base URL, or the sandbox (whose port changes on
    every run) by the place its state lives."""
    if settings.sandbox:
        return f"the sandbox in {settings.root.resolve() / '.assistsync'}"
    return base_url
