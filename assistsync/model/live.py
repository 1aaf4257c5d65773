"""Live state: what the API says exists, as read by ``assistsync.fetch`` (never modified)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import TAG_KEY


class LiveAssistant(BaseModel):
    """An assistant object as the API returns it (unknown extra fields are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    created_at: int = 0
    name: str | None = None
    model: str
    description: str | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    file_ids: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        """The manifest key this assistant was created for, if assistsync tagged it."""
        return self.metadata.get(TAG_KEY)


class LiveFile(BaseModel):
    """A file object as the API returns it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    bytes: int = 0
    created_at: int = 0
    filename: str = ""
    purpose: str = ""


class Live(BaseModel):
    """A snapshot of the account: every assistant and every file with purpose ``assistants``.

    ``file_sha256`` holds content hashes assistsync computed by downloading files it had to
    identify without a lock entry (lock recovery); it is empty in the common case.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    assistants: tuple[LiveAssistant, ...] = ()
    files: tuple[LiveFile, ...] = ()
    file_sha256: dict[str, str] = Field(default_factory=dict)

    def assistant(self, assistant_id: str) -> LiveAssistant | None:
        """The live assistant with this id, if any."""
        return next((a for a in self.assistants if a.id == assistant_id), None)
