"""The comparable configuration of one assistant, in API terms but with files by content.

This is the value the planner compares three ways (desired, live, last applied) and the value the
lock records as "last applied". Files are named by sha256, not by id, because ids change when a
file is re-uploaded while content is what the user manages.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

TAG_KEY = "assistsync_key"
"""Metadata key assistsync sets on every assistant it creates: the manifest key it belongs to."""

UNKNOWN_FILE_PREFIX = "id:"
"""Marks a live attachment whose content assistsync does not know (attached by someone else)."""

DIGEST_PREFIX = "sha256:"
"""Prefix of an instructions digest as recorded in the lock (see ``AssistantConfig.digest``)."""

CONFIG_FIELDS = ("name", "model", "description", "instructions", "tools", "files", "metadata")


def canonical_json(value: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace): equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """One tool in the shape used for comparison: ``None`` members dropped, recursively.

    Servers differ in whether they echo ``"description": null``; that is not a difference a user
    should see in a plan.
    """
    return {
        k: normalize_tool(v) if isinstance(v, dict) else v for k, v in tool.items() if v is not None
    }


class AssistantConfig(BaseModel):
    """Everything assistsync manages on one assistant.

    ``files`` holds the sha256 of each attached file, sorted; ``metadata`` is the user's metadata
    without the ``assistsync_key`` tag (the tag is added on the wire, see ``wire_metadata``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    model: str
    description: str | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    files: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)

    def normalized(self) -> AssistantConfig:
        """The same configuration with tools normalised and files sorted/deduplicated."""
        return self.model_copy(
            update={
                "tools": tuple(normalize_tool(t) for t in self.tools),
                "files": tuple(sorted(set(self.files))),
                "metadata": dict(sorted(self.metadata.items())),
            }
        )

    def digest(self) -> AssistantConfig:
        """The form the lock records: normalised, instructions replaced by their sha256.

        Instructions can be hundreds of kilobytes; the lock only needs to know whether they
        changed outside assistsync, and a committed lock should not repeat every prompt.
        """
        norm = self.normalized()
        if norm.instructions is None or norm.instructions.startswith(DIGEST_PREFIX):
            return norm
        digest = hashlib.sha256(norm.instructions.encode()).hexdigest()
        return norm.model_copy(update={"instructions": DIGEST_PREFIX + digest})

    def differing_fields(self, other: AssistantConfig) -> tuple[str, ...]:
        """Fields whose comparable values differ, in ``CONFIG_FIELDS`` order.

        Tools (function schemas) are compared as canonical JSON, so key order never matters.
        """
        mine = self.normalized().model_dump(mode="json")
        theirs = other.normalized().model_dump(mode="json")
        return tuple(
            f for f in CONFIG_FIELDS if canonical_json(mine[f]) != canonical_json(theirs[f])
        )


def wire_metadata(metadata: dict[str, str], key: str) -> dict[str, str]:
    """The metadata sent to the API: the user's pairs plus the ownership tag."""
    return {**metadata, TAG_KEY: key}
