"""Desired state: what the manifests ask for, fully resolved (files read, paths checked)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistsync.model.config import AssistantConfig


class SourceLocation(BaseModel):
    """Where something was declared: a project-relative file and a 1-based line and column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    line: int = 1
    col: int = 1


class DesiredFile(BaseModel):
    """A local knowledge file. ``path`` is project-relative POSIX; content is named by sha256."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str
    size: int


class DesiredAssistant(BaseModel):
    """One assistant as the manifests declare it; ``files`` are project-relative paths, sorted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    name: str | None = None
    model: str
    description: str | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    files: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)
    source: SourceLocation

    def config(self, files: dict[str, DesiredFile]) -> AssistantConfig:
        """The comparable configuration, with file paths turned into content hashes."""
        return AssistantConfig(
            name=self.name,
            model=self.model,
            description=self.description,
            instructions=self.instructions,
            tools=self.tools,
            files=tuple(files[p].sha256 for p in self.files),
            metadata=self.metadata,
        )


class Desired(BaseModel):
    """The whole desired state of a project.

    ``assistants`` by key; ``files`` by project-relative path (every file any assistant names).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    assistants: dict[str, DesiredAssistant] = Field(default_factory=dict)
    files: dict[str, DesiredFile] = Field(default_factory=dict)

    def config_of(self, key: str) -> AssistantConfig:
        """The comparable configuration of one desired assistant."""
        return self.assistants[key].config(self.files)
