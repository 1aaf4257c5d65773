"""Which live assistants an import takes, which it skips, and why.

Pure: the listing, the criteria, the lock and the keys the manifests declare in; the choice
out. An assistant is

* *taken* when the criteria select it and nothing below applies;
* *managed* (skipped with a note) when the lock already names its id; if its ownership tag is
  missing, the import sets it (an earlier import was interrupted before tagging it);
* *not taken* when it carries an ``assistsync_key`` tag that the lock does not claim: another
  project (or another environment) manages it, or this project declares the key and the next
  plan imports it by its tag;
* *refused* when its manifest could not reproduce it (a tool or field v1 manifests cannot
  express, 16 metadata pairs leaving no room for the tag): reported, never half-imported.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from assistsync.adopt.keys import Chosen, unique_key
from assistsync.errors import AssistsyncError
from assistsync.manifest.parameters import schema_problems
from assistsync.model import TAG_KEY, LiveAssistant, Lock
from assistsync.model.config import local_tag, tag_value
from assistsync.model.manifest import API_MAX_METADATA_PAIRS, TOOL_TYPES

_TOOL_FIELDS = {
    "code_interpreter": {"type"},
    "retrieval": {"type"},
    "function": {"type", "function"},
}
_FUNCTION_FIELDS = {"name", "description", "parameters"}


@dataclass(frozen=True)
class Criteria:
    """What ``assistsync import`` was asked for: ``--all``, ``--id``, ``--name``, ``--metadata``.

    ``--id`` names assistants (each must exist); ``--name`` (globs, any may match) and
    ``--metadata`` (every pair must match) narrow the selection; ``--all`` takes every one.
    """

    all: bool = False
    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        """Refuse an import that names nothing to take."""
        if not (self.all or self.ids or self.names or self.metadata):
            raise AssistsyncError(
                "choose the assistants to import: --all, --id ID, --name GLOB or "
                "--metadata KEY=VALUE (each may be repeated)."
            )

    def matches(self, a: LiveAssistant) -> bool:
        """True when ``a`` passes ``--name`` and ``--metadata``."""
        if self.names and not any(fnmatch.fnmatchcase(a.name or "", g) for g in self.names):
            return False
        return all(a.metadata.get(k) == v for k, v in self.metadata)


@dataclass(frozen=True)
class Taken:
    """An assistant to import under ``key`` (``chosen`` says whether its slug was taken)."""

    live: LiveAssistant
    chosen: Chosen

    @property
    def key(self) -> str:
        return self.chosen.key


@dataclass(frozen=True)
class Passed:
    """A selected assistant the import leaves alone, and why (one sentence)."""

    live: LiveAssistant
    why: str
    refused: bool = False
    """True when the user's selection cannot be honoured (exit 1), not merely skipped."""


@dataclass
class Choice:
    """The outcome of ``choose``."""

    taken: list[Taken] = field(default_factory=list)
    managed: list[Passed] = field(default_factory=list)
    not_taken: list[Passed] = field(default_factory=list)
    refused: list[Passed] = field(default_factory=list)
    retag: list[tuple[str, LiveAssistant]] = field(default_factory=list)
    """Managed assistants whose ownership tag is missing: ``(key, live)``."""


def label(a: LiveAssistant) -> str:
    """``asst_123 ("Support Bot")`` for messages."""
    return f"{a.id} ({a.name!r})" if a.name else a.id


def unsupported(a: LiveAssistant) -> str | None:
    """Why a manifest cannot reproduce ``a`` exactly, or ``None``."""
    user_pairs = {k: v for k, v in a.metadata.items() if k != TAG_KEY}
    if len(user_pairs) >= API_MAX_METADATA_PAIRS:
        return (
            f"it has {len(user_pairs)} metadata pairs, the API's maximum, so it cannot carry "
            f"the {TAG_KEY} tag assistsync owns assistants by; remove a pair and import it again"
        )
    for tool in a.tools:
        kind = tool.get("type")
        if kind not in TOOL_TYPES:
            return f"it has a tool of type {kind!r}, which Assistants v1 manifests cannot express"
        extra = set(tool) - _TOOL_FIELDS[str(kind)]
        if extra:
            return f"its {kind} tool has fields manifests cannot express: {sorted(extra)}"
        if kind == "function":
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                return "it has a function tool without a name"
            extra = set(fn) - _FUNCTION_FIELDS
            if extra:
                return (
                    f"function {fn['name']!r} has fields manifests cannot express: {sorted(extra)}"
                )
            params = fn.get("parameters")
            if params is not None and not isinstance(params, dict):
                return f"function {fn['name']!r} has parameters that are not a JSON object"
            problems = schema_problems(params) if params is not None else []
            if problems:
                # the manifest would not validate, so its first plan could not be made
                return (
                    f"function {fn['name']!r} has parameters that are not a valid JSON Schema "
                    f"({problems[0].message}); fix them on the server and import it again"
                )
    return None


def choose(
    live: list[LiveAssistant],
    criteria: Criteria,
    lock: Lock,
    declared: set[str],
    environment: str | None,
) -> Choice:
    """Sort the selected live assistants into taken, managed, not taken and refused.

    Keys are slugs of the names, unique against the keys the manifests declare, the lock holds
    and any live tag names, given in creation order (oldest first) so the same account gives the
    same keys. ``--id`` values that match no assistant raise ``AssistsyncError``.
    """
    criteria.check()
    by_id = {a.id: a for a in live}
    missing = [i for i in criteria.ids if i not in by_id]
    if missing:
        raise AssistsyncError(
            f"no assistant with id {', '.join(missing)} on this account; check the id "
            "(assistsync plan lists nothing for unmanaged assistants; any Assistants client "
            "lists them all)."
        )
    pool = [by_id[i] for i in dict.fromkeys(criteria.ids)] if criteria.ids else live
    # creation order; the API's own order (oldest first) breaks ties within a second
    selected = sorted((a for a in pool if criteria.matches(a)), key=lambda a: a.created_at)
    owned = {entry.id: key for key, entry in lock.assistants.items()}
    taken_keys = set(declared) | set(lock.assistants)
    for a in live:
        if a.tag is not None:
            taken_keys.add(a.tag.rpartition("@")[0] or a.tag)
    choice = Choice()
    for a in selected:
        key = owned.get(a.id)
        if key is not None:
            choice.managed.append(Passed(a, f"already managed as {key}"))
            if local_tag(a.tag, environment) != key:
                choice.retag.append((key, a))
            continue
        if a.tag is not None:
            local = local_tag(a.tag, environment)
            if local is not None and local in declared:
                why = (
                    f"tagged {TAG_KEY}={a.tag}, a key this project declares; the next plan "
                    "imports it by its tag"
                )
            else:
                why = f"tagged {TAG_KEY}={a.tag} by another project or environment"
            choice.not_taken.append(Passed(a, why))
            continue
        problem = unsupported(a)
        if problem is not None:
            choice.refused.append(Passed(a, problem, refused=True))
            continue
        choice.taken.append(Taken(a, unique_key(a.name, taken_keys)))
    return choice


def wire_tag(key: str, environment: str | None) -> str:
    """The tag value an imported assistant gets (see ``tag_value``)."""
    return tag_value(key, environment)
