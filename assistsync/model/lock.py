"""The lock file's content: which live objects assistsync owns, and what it last applied."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import AssistantConfig

LOCK_VERSION = 1


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


class Lock(BaseModel):
    """Version, lineage (set once), serial (grows with every write), owned objects.

    ``assistants`` is keyed by manifest key, ``files`` by project-relative path. Two paths with
    the same content share one upload, so they carry the same id. An old upload whose deletion
    was held back by a failed change stays owned under ``<path>@<sha256 prefix>`` until a later
    apply deletes it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = LOCK_VERSION
    lineage: str
    serial: int = 0
    assistants: dict[str, LockedAssistant] = Field(default_factory=dict)
    files: dict[str, LockedFile] = Field(default_factory=dict)

    def file_ids(self) -> set[str]:
        """Every file id the lock owns."""
        return {f.id for f in self.files.values()}

    def sha_by_file_id(self) -> dict[str, str]:
        """Content hash of each owned file id."""
        return {f.id: f.sha256 for f in self.files.values()}
