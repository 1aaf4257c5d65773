"""A plan: the frozen list of changes that would make the live state match the manifests.

A plan records fingerprints of what it was computed from; apply carries out exactly these
changes and never diffs again. Rendering reads it; only ``assistsync.applier`` acts on it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import AssistantConfig

PLAN_FORMAT_VERSION = "1.0"

Action = Literal["create", "update", "delete", "no-op"]


class FileChange(BaseModel):
    """Upload a local file (``create``) or delete an upload nothing references (``delete``).

    ``adopt_id`` set on a create means the content is already uploaded (found by content during
    lock recovery): apply records it instead of uploading again.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["create", "delete"]
    path: str
    sha256: str
    size: int
    id: str | None = None
    adopt_id: str | None = None
    reason: str | None = None

    @property
    def address(self) -> str:
        """Terraform-style address, e.g. ``file.docs/faq.md``."""
        return f"file.{self.path}"


class AssistantChange(BaseModel):
    """What happens to one assistant.

    ``before`` is the live configuration (``None`` on create), ``after`` the desired one
    (``None`` on delete). ``changed`` lists the differing fields of an update. ``import_id`` is
    set when the assistant was found by its tag and is not in the lock yet (it is adopted).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    action: Action
    id: str | None = None
    before: AssistantConfig | None = None
    after: AssistantConfig | None = None
    changed: tuple[str, ...] = ()
    import_id: str | None = None
    reason: str | None = None
    refresh: bool = False
    """A no-op whose lock entry is stale (live matches the manifests, the lock does not)."""

    @property
    def needs_apply(self) -> bool:
        """True when apply has something to do for this assistant (a call or a lock record)."""
        return self.action != "no-op" or self.import_id is not None or self.refresh

    @property
    def address(self) -> str:
        """Terraform-style address, e.g. ``assistant.support-bot``."""
        return f"assistant.{self.key}"


class Drift(BaseModel):
    """An owned assistant changed outside assistsync since the last apply.

    ``applied`` is what assistsync last applied; ``live`` what is there now (``None`` when the
    assistant was deleted outside assistsync).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    id: str
    applied: AssistantConfig
    live: AssistantConfig | None
    changed: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """Terraform-style address."""
        return f"assistant.{self.key}"


class Plan(BaseModel):
    """The plan: changes in a stable order, drift, and fingerprints of its inputs.

    ``files`` and ``assistants`` hold every change, including ``no-op`` assistants (so renderers
    can count them); ``paths`` maps each desired file path to its hash for uploads.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: str = PLAN_FORMAT_VERSION
    assistants: tuple[AssistantChange, ...] = ()
    files: tuple[FileChange, ...] = ()
    drift: tuple[Drift, ...] = ()
    desired_fingerprint: str = ""
    live_fingerprint: str = ""
    lock_lineage: str = ""
    lock_serial: int = 0
    file_names: dict[str, str] = Field(default_factory=dict)
    """Display name (project-relative path) of each content hash the plan mentions."""
    file_ids: dict[str, str] = Field(default_factory=dict)
    """The live upload to use for each content hash already on the server (sha256 -> id)."""
    forget_assistants: tuple[str, ...] = ()
    """Lock keys whose assistant is gone and not desired: dropped from the lock on apply."""

    @property
    def counts(self) -> dict[str, int]:
        """Resources to import, add, change and destroy (assistants and files together)."""
        counts = {"import": 0, "add": 0, "change": 0, "destroy": 0}
        for a in self.assistants:
            if a.import_id:
                counts["import"] += 1
            if a.action == "create":
                counts["add"] += 1
            elif a.action == "update":
                counts["change"] += 1
            elif a.action == "delete":
                counts["destroy"] += 1
        for f in self.files:
            if f.adopt_id:
                counts["import"] += 1
            elif f.action == "create":
                counts["add"] += 1
            else:
                counts["destroy"] += 1
        return counts

    @property
    def has_changes(self) -> bool:
        """True when applying would change anything remote, or adopt something into the lock."""
        return any(self.counts.values())

    @property
    def steps(self) -> int:
        """How many changes apply works through (for progress): files and assistants."""
        return sum(1 for a in self.assistants if a.needs_apply) + len(self.files)

    @property
    def lock_only(self) -> bool:
        """True when apply would only bring the lock up to date (no call to the API)."""
        return not self.has_changes and (
            bool(self.forget_assistants) or any(a.refresh for a in self.assistants)
        )

    def summary(self) -> str:
        """The summary line, word for word as Terraform prints it (scripts parse it)."""
        c = self.counts
        if not self.has_changes:
            return "No changes. Your assistants match the configuration."
        imports = f"{c['import']} to import, " if c["import"] else ""
        return (
            f"Plan: {imports}{c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."
        )
