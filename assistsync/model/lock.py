"""The lock file's content: which live objects assistsync owns, and what it last applied."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import AssistantConfig

LOCK_VERSION = 2
"""2: retired uploads are a section of their own (``retired``, keyed by file id). Version 1 kept
them in ``files`` under ``<path>@<sha256 prefix>``; ``Lock.from_version_1`` reads that form."""


class LockedAssistant(BaseModel):
    """An owned assistant: its id and the configuration last applied to it (for drift)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    applied: AssistantConfig


class LockedFile(BaseModel):
    """An uploaded file, keyed in the lock by its project-relative path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    sha256: str
    size: int


class RetiredFile(BaseModel):
    """An upload assistsync owns that no manifest needs any more, kept until it is deleted.

    Its deletion was held back (an assistant assistsync does not manage has it attached, or a
    change it depended on failed) or has not happened yet. ``path`` is where it came from, for
    messages only: it is never split out of a key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    size: int


class Lock(BaseModel):
    """Version, lineage (set once), serial (grows with every write), owned objects.

    ``assistants`` is keyed by manifest key, ``files`` by project-relative path (only paths the
    manifests name), ``retired`` by file id (owned uploads no manifest needs). Two paths with the
    same content share one upload, so they carry the same id.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = LOCK_VERSION
    lineage: str
    serial: int = 0
    assistants: dict[str, LockedAssistant] = Field(default_factory=dict)
    files: dict[str, LockedFile] = Field(default_factory=dict)
    retired: dict[str, RetiredFile] = Field(default_factory=dict)

    def file_ids(self) -> set[str]:
        """Every file id the lock owns (current and retired)."""
        return {f.id for f in self.files.values()} | set(self.retired)

    def sha_by_file_id(self) -> dict[str, str]:
        """Content hash of each owned file id (current and retired)."""
        out = {i: r.sha256 for i, r in self.retired.items()}
        out.update({f.id: f.sha256 for f in self.files.values()})
        return out

    def with_lineage(self) -> Lock:
        """This lock with a lineage: kept when it has one, a fresh UUID when it is new."""
        return self if self.lineage else self.model_copy(update={"lineage": str(uuid.uuid4())})

    # --- what apply records when a change succeeds (the planner names the change) ----------
    def with_assistant(self, key: str, entry: LockedAssistant) -> Lock:
        """The assistant ``key`` recorded as ``entry`` (created, updated or imported)."""
        return self.model_copy(update={"assistants": {**self.assistants, key: entry}})

    def without_assistant(self, key: str) -> Lock:
        """The assistant ``key`` forgotten (destroyed)."""
        return self.model_copy(
            update={"assistants": {k: v for k, v in self.assistants.items() if k != key}}
        )

    def with_upload(self, paths: tuple[str, ...], entry: LockedFile) -> Lock:
        """``entry`` recorded under each of ``paths`` (uploaded or adopted).

        An upload a path held before stays owned: retired, unless another path still holds it.
        """
        files = dict(self.files)
        retired = {i: r for i, r in self.retired.items() if i != entry.id}
        replaced = {p: files[p] for p in paths if p in files and files[p].id != entry.id}
        for p in paths:
            files[p] = entry
        held = {f.id for f in files.values()}
        for p, old in sorted(replaced.items()):
            if old.id not in held:
                retired.setdefault(old.id, RetiredFile(path=p, sha256=old.sha256, size=old.size))
        return self.model_copy(update={"files": dict(sorted(files.items())), "retired": retired})

    def without_file(self, file_id: str) -> Lock:
        """The upload ``file_id`` forgotten (deleted), wherever the lock holds it."""
        return self.model_copy(
            update={
                "files": {p: f for p, f in self.files.items() if f.id != file_id},
                "retired": {i: r for i, r in self.retired.items() if i != file_id},
            }
        )

    @classmethod
    def from_version_1(cls, data: dict[str, object]) -> dict[str, object]:
        """Version 1 lock data in version 2's shape (validated by the caller).

        Version 1 kept a retired upload in ``files`` under ``<path>@<first 12 hex of its
        sha256>``. A key is read that way only when its suffix is exactly that prefix of its own
        entry's hash, so a path with an ``@`` in its name (``docs/team@acme.md``) stays a path.
        """
        files = data.get("files")
        if not isinstance(files, dict):
            return {**data, "version": LOCK_VERSION}
        current: dict[str, object] = {}
        retired: dict[str, object] = {}
        for key, entry in files.items():
            path, at, suffix = str(key).rpartition("@")
            if (
                at
                and path
                and isinstance(entry, dict)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("id"), str)
                and entry["sha256"][:12] == suffix
            ):
                retired[entry["id"]] = {
                    "path": path,
                    "sha256": entry["sha256"],
                    "size": entry.get("size"),
                }
            else:
                current[key] = entry
        held = {e.get("id") for e in current.values() if isinstance(e, dict)}
        retired = {i: r for i, r in retired.items() if i not in held}
        return {**data, "version": LOCK_VERSION, "files": current, "retired": retired}
