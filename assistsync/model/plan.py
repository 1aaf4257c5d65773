"""A plan: the frozen list of changes that would make the live state match the manifests.

A plan records fingerprints of what it was computed from; apply carries out exactly these
changes and never diffs again. A plan is enough to apply: it holds the lock apply starts from
(``Plan.lock``), and each change says what it records in the lock when it succeeds (see
``Lock.with_upload``, ``AssistantChange.locked``). Rendering reads it; only
``assistsync.applier`` acts on it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import AssistantConfig
from assistsync.model.lock import Lock, LockedAssistant, LockedFile

PLAN_FORMAT_VERSION = "1.0"

Action = Literal["create", "update", "delete", "no-op"]


class FileChange(BaseModel):
    """Upload a local file (``create``) or delete an upload nothing references (``delete``).

    ``adopt_id`` set on a create means the content is already uploaded (found by content during
    lock recovery): apply records it instead of uploading again. A create records the upload in
    the lock under every path in ``paths`` (all desired paths with this content; ``path`` is the
    first, read for the upload); a delete forgets ``id``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["create", "delete"]
    path: str
    sha256: str
    size: int
    id: str | None = None
    adopt_id: str | None = None
    reason: str | None = None
    paths: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """Terraform-style address, e.g. ``file.docs/faq.md``."""
        return f"file.{self.path}"

    def locked(self, file_id: str) -> LockedFile:
        """The lock entry of this content once uploaded (or adopted) as ``file_id``."""
        return LockedFile(id=file_id, sha256=self.sha256, size=self.size)


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

    def locked(self, assistant_id: str) -> LockedAssistant:
        """What the lock records once this change succeeds on ``assistant_id``."""
        assert self.after is not None, "a delete records nothing; it forgets the key"
        return LockedAssistant(id=assistant_id, applied=self.after.digest())


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
    """The plan: changes in a stable order, drift, fingerprints of its inputs, and the lock
    apply starts from.

    ``files`` and ``assistants`` hold every change, including ``no-op`` assistants (so renderers
    can count them). ``lock`` is the lock as read, brought up to date with the live state: owned
    objects found gone are forgotten, uploads no manifest needs are retired, and desired paths
    whose content is already uploaded are recorded. Apply writes it before its first change and
    records each successful change on top of it. ``root`` is the project directory the paths are
    relative to, ``endpoint`` the API the plan was made against.
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
    lock: Lock
    """The lock apply starts from (required: a plan without it cannot be applied safely)."""
    lock_refresh: bool = False
    """True when ``lock`` differs from the lock as read: apply writes it even with no change."""
    root: str = ""
    endpoint: str = ""
    environment: str = ""
    """The environment the plan was made for (``--env``); empty without environments."""

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
            self.lock_refresh or any(a.refresh for a in self.assistants)
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
