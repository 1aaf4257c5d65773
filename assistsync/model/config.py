"""The comparable configuration of one assistant, in API terms but with files by content.

This is the value the planner compares three ways (desired, live, last applied) and the value the
lock records as "last applied". Files are named by sha256, not by id, because ids change when a
file is re-uploaded while content is what the user manages.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

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


def _strict(value: Any) -> bytes:
    """A form of ``value`` in which values ``==`` calls equal but the API does not (``1``,
    ``1.0`` and ``true``) differ: sorted-key JSON. Only compared, never stored or hashed, so
    orjson's encoding (~10x faster than ``json``; this runs for every assistant of a plan) may
    differ from :func:`canonical_json`'s; what orjson refuses (integers beyond 64 bits) takes
    the canonical form."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return canonical_json(value).encode()


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
    Values are normalised on construction (see ``differing_fields``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    model: str
    description: str | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    files: tuple[str, ...] = ()
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("tools")
    @classmethod
    def _normalize_tools(cls, tools: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
        return tuple(normalize_tool(t) for t in tools)

    @field_validator("files")
    @classmethod
    def _sort_files(cls, files: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(files)))

    @field_validator("metadata")
    @classmethod
    def _sort_metadata(cls, metadata: dict[str, str]) -> dict[str, str]:
        return dict(sorted(metadata.items()))

    def digest(self) -> AssistantConfig:
        """The form the lock records: instructions replaced by their sha256.

        Instructions can be hundreds of kilobytes; the lock only needs to know whether they
        changed outside assistsync, and a committed lock should not repeat every prompt.
        """
        if self.instructions is None or self.instructions.startswith(DIGEST_PREFIX):
            return self
        digest = hashlib.sha256(self.instructions.encode()).hexdigest()
        return self.model_copy(update={"instructions": DIGEST_PREFIX + digest})

    def differing_fields(self, other: AssistantConfig) -> tuple[str, ...]:
        """Fields whose comparable values differ, in ``CONFIG_FIELDS`` order.

        Every configuration is normalised when it is built (tools without ``None`` members,
        files sorted, metadata sorted), so plain equality compares the rest; tools (function
        schemas) are compared as sorted-key JSON, where key order never matters but ``1``, ``1.0``
        and ``true`` differ, as they do to the API.
        """
        out = []
        for field in CONFIG_FIELDS:
            mine, theirs = getattr(self, field), getattr(other, field)
            if field == "tools":
                if mine != theirs or _strict(mine) != _strict(theirs):
                    out.append(field)
            elif mine != theirs:
                out.append(field)
        return tuple(out)


ENVIRONMENT_SEPARATOR = "@"
"""Between a key and its environment in a tag (``support-bot@prod``); keys never hold it."""


def tag_value(key: str, environment: str | None) -> str:
    """The ``assistsync_key`` tag of ``key``: the key itself, or ``key@environment`` in a
    project with environments, so that environments sharing one server never take each
    other's assistants for their own."""
    return f"{key}{ENVIRONMENT_SEPARATOR}{environment}" if environment else key


def local_tag(tag: str | None, environment: str | None) -> str | None:
    """The key a live tag names in ``environment`` (``None``: no tag, or another
    environment's). Without environments a tag is the key itself."""
    if tag is None or not environment:
        return tag
    key, sep, where = tag.rpartition(ENVIRONMENT_SEPARATOR)
    return key if sep and where == environment else None


def wire_metadata(metadata: dict[str, str], key: str) -> dict[str, str]:
    """The metadata sent to the API: the user's pairs plus the ownership tag."""
    return {**metadata, TAG_KEY: key}
