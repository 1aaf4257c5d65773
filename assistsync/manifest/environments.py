"""Environments: one set of manifests applied to several places (staging, prod).

``assistsync.yaml`` may declare ``environments``; a command then names one (``--env NAME`` or
``ASSISTSYNC_ENV``). The chosen environment's ``variables`` feed ``${VAR}`` ahead of the process
environment, and it has a lock of its own (``assistsync.<env>.lock`` unless it sets ``lock``).
Without ``environments`` nothing changes, and naming one is an error. The endpoint and the key
are not part of an environment: they stay in the process environment, so CI maps each
environment to its own secrets.
"""

from __future__ import annotations

import posixpath
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass

from assistsync.errors import AssistsyncError
from assistsync.manifest.source import Pos, YMap
from assistsync.model.manifest import ProjectConfig

ENV_VARIABLE = "ASSISTSYNC_ENV"
"""The process variable that selects an environment when ``--env`` is not given."""


@dataclass(frozen=True)
class Selected:
    """What choosing an environment (or none) means for loading: ``${VAR}`` values, the lock
    path as written (relative to assistsync.yaml) and where to report a problem with it."""

    name: str | None
    env: Mapping[str, str]
    lock: str
    lock_pos: Pos


def listed(config: ProjectConfig) -> str:
    """The declared environments, for messages: ``staging, prod``."""
    return ", ".join(config.environments)


def default_lock(lock: str, name: str) -> str:
    """The project's lock path with ``.<name>`` before its suffix (``assistsync.prod.lock``)."""
    head, tail = posixpath.split(lock)
    stem, dot, suffix = tail.rpartition(".")
    named = f"{stem}.{name}.{suffix}" if dot and stem else f"{tail}.{name}"
    return posixpath.join(head, named) if head else named


def select(
    config: ProjectConfig, data: YMap, name: str | None, base: Mapping[str, str]
) -> Selected:
    """The environment ``name`` of ``config`` (``data`` is its located YAML), or the project
    itself when it declares none. Raises ``AssistsyncError`` when the choice does not fit the
    project: none given where environments exist, an unknown one, one given where none exist.
    """
    lock_pos = data.value_pos.get("lock", (1, 1)) if isinstance(data, YMap) else (1, 1)
    if not config.environments:
        if name:
            raise AssistsyncError(
                f"environment {name!r} was asked for (--env or {ENV_VARIABLE}), but "
                "assistsync.yaml declares no environments. Drop --env (and unset "
                f"{ENV_VARIABLE}), or declare it under 'environments:'."
            )
        return Selected(None, base, config.lock, lock_pos)
    if not name:
        raise AssistsyncError(
            f"this project declares environments ({listed(config)}): choose one with "
            f"--env NAME (or {ENV_VARIABLE}=NAME)."
        )
    chosen = config.environments.get(name)
    if chosen is None:
        raise AssistsyncError(
            f"no environment {name!r} in assistsync.yaml; it declares {listed(config)}."
        )
    lock = chosen.lock if chosen.lock is not None else default_lock(config.lock, name)
    envs = data.get("environments") if isinstance(data, YMap) else None
    entry = envs.get(name) if isinstance(envs, YMap) else None
    if chosen.lock is not None and isinstance(entry, YMap):
        lock_pos = entry.value_pos.get("lock", lock_pos)
    elif isinstance(envs, YMap):
        lock_pos = envs.key_pos.get(name, lock_pos)
    return Selected(name, ChainMap(dict(chosen.variables), dict(base)), lock, lock_pos)
