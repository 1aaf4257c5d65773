"""Loading a project in each of its environments, for ``validate``.

Each environment gives ``${VAR}`` other values, so a manifest can be valid in one and not in
another. Every environment is loaded; a problem that all of them share is reported once, as it
would be without environments, and one that only some have names them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistsync.cli.context import Settings
from assistsync.errors import Diagnostic, ManifestError

if TYPE_CHECKING:
    from assistsync.manifest import Project


def load_every_environment(settings: Settings) -> dict[str | None, Project]:
    """The project loaded in each environment (``{None: project}`` without environments, or
    only the one ``--env`` names). Raises one ``ManifestError`` with every environment's
    problems, each naming the environments it belongs to unless all have it."""
    from assistsync import pipeline
    from assistsync.manifest import CONFIG_NAME, project_environments

    names: list[str | None]
    if settings.environment:
        names = [settings.environment]
    else:
        names = list(project_environments(settings.root)) or [None]
    projects: dict[str | None, Project] = {}
    failures: dict[str | None, ManifestError] = {}
    for name in names:
        try:
            projects[name] = pipeline.load(settings.root, name)
        except ManifestError as exc:
            failures[name] = exc
    diagnostics = _merged(names, failures)
    holders: dict[str, list[str]] = {}
    for name, project in projects.items():
        if name:
            holders.setdefault(project.relative(project.lock_path), []).append(name)
    for lock, sharing in sorted(holders.items()):
        if len(sharing) > 1:
            diagnostics.append(
                Diagnostic(
                    CONFIG_NAME,
                    1,
                    1,
                    f"environments {', '.join(sharing)} share the lock file {lock!r}: each "
                    "environment needs a lock of its own (set a different 'lock:' in each)",
                )
            )
    if diagnostics:
        subjects = {exc.subject for exc in failures.values()} or {"the project file"}
        raise ManifestError(diagnostics, sorted(subjects)[0])
    return projects


def _merged(names: list[str | None], failures: dict[str | None, ManifestError]) -> list[Diagnostic]:
    """Every environment's diagnostics once, each naming its environments unless all have it."""
    seen: dict[Diagnostic, list[str]] = {}
    for name, exc in failures.items():
        for diagnostic in exc.diagnostics:
            seen.setdefault(diagnostic, []).append(name or "")
    out: list[Diagnostic] = []
    for diagnostic, where in seen.items():
        if len(where) == len(names) or not any(where):
            out.append(diagnostic)
            continue
        label = "environment" if len(where) == 1 else "environments"
        out.append(
            Diagnostic(
                diagnostic.file,
                diagnostic.line,
                diagnostic.col,
                f"{diagnostic.message} (in {label} {', '.join(where)})",
            )
        )
    return out
