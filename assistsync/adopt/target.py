"""The project an import writes into: its root, lock, declared keys and manifest globs."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from assistsync.errors import AssistsyncError
from assistsync.lockfile import check_location, read_lock
from assistsync.manifest import CONFIG_NAME, load_project, locate_lock, project_config
from assistsync.manifest.files import has_magic
from assistsync.model import Lock
from assistsync.model.manifest import DEFAULT_LOCK, DEFAULT_MANIFEST_GLOB

NEW_CONFIG = f"manifests:\n  - {DEFAULT_MANIFEST_GLOB}\n"
"""The ``assistsync.yaml`` an import writes into a directory that has none."""


@dataclass(frozen=True)
class Target:
    """Where an import goes. ``declared`` are the keys the manifests hold; ``known_files`` the
    project-relative path of each file id the lock records under a path."""

    root: Path
    lock_path: Path
    lock: Lock
    declared: frozenset[str]
    globs: tuple[str, ...]
    environment: str | None
    new_config: bool = False
    known_files: dict[str, str] = field(default_factory=dict)


def lock_location(root: Path, environment: str | None) -> Path:
    """The lock an import records into (``assistsync.lock`` for a directory without a project)."""
    resolved = root.resolve()
    if not (resolved / CONFIG_NAME).exists():
        if environment:
            raise AssistsyncError(
                f"--env {environment} needs an {CONFIG_NAME} that declares it; {resolved} has none."
            )
        return resolved / DEFAULT_LOCK
    path = locate_lock(resolved, environment=environment)
    check_location(resolved, path)
    return path


def _matches_any(root: Path, globs: list[str]) -> bool:
    return any(glob.glob(os.path.join(glob.escape(str(root)), g), recursive=True) for g in globs)


def load_target(root: Path, environment: str | None) -> Target:
    """Read the project: config, lock and the keys its manifests declare.

    A project whose globs match no manifest yet is an empty project (nothing declared); one
    whose manifests are invalid is refused (``ManifestError``): the import must know every key.
    """
    resolved = root.resolve()
    if not (resolved / CONFIG_NAME).exists():
        path = resolved / DEFAULT_LOCK
        return Target(
            resolved, path, read_lock(path), frozenset(), (DEFAULT_MANIFEST_GLOB,), None, True
        )
    path = lock_location(resolved, environment)
    lock = read_lock(path)
    globs = list(project_config(resolved).manifests) or [DEFAULT_MANIFEST_GLOB]
    declared: frozenset[str] = frozenset()
    desired_paths: set[str] = set()
    if _matches_any(resolved, globs):
        project = load_project(resolved, environment=environment)
        declared = frozenset(project.desired.assistants)
        desired_paths = set(project.desired.files)
    known = {f.id: p for p, f in lock.files.items() if p in desired_paths}
    return Target(resolved, path, lock, declared, tuple(globs), environment, False, known)


def _translate(pattern: str) -> re.Pattern[str]:
    """A manifest glob as a regex over project-relative POSIX paths (``**/`` any depth)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:[^/]+/)*"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out += re.escape("[")
                i += 1
            else:
                out += "[" + pattern[i + 1 : end].replace("!", "^", 1) + "]"
                i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def covered(rel: str, globs: tuple[str, ...]) -> bool:
    """Whether the project-relative path ``rel`` is one the manifest globs load."""
    return any(_translate(g.removeprefix("./")).fullmatch(rel) for g in globs)


def manifest_dir(globs: tuple[str, ...]) -> str:
    """The directory new manifests go to: the literal start of the first glob."""
    parts = []
    for part in globs[0].removeprefix("./").split("/")[:-1]:
        if has_magic(part):
            break
        parts.append(part)
    return "/".join(parts)
