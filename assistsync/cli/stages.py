"""The stages every command chains, for the CLI: ``assistsync.pipeline`` with ``Settings``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistsync.cli.context import Settings

if TYPE_CHECKING:
    from assistsync.manifest import Project


def load(settings: Settings) -> Project:
    """Load and validate the project's manifests (raises ``ManifestError`` with every problem)."""
    from assistsync import pipeline

    return pipeline.load(settings.root, settings.environment)


def endpoint(settings: Settings, base_url: str) -> str:
    """The endpoint a plan records: the API's base URL, or the sandbox (whose port changes on
    every run) by the place its state lives; with the environment, so that a plan saved for
    one environment is not applied to another."""
    where = base_url
    if settings.sandbox:
        where = f"the sandbox in {settings.root.resolve() / '.assistsync'}"
    if settings.environment:
        where += f" (environment {settings.environment})"
    return where
