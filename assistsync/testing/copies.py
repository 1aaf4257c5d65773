"""``assistsync test --planned``: temporary copies of the manifests' assistants.

Each copy is created from the manifests (not the lock) and tagged
``metadata.assistsync_test_copy = <key>`` — never ``assistsync_key``, the ownership tag the
planner adopts, so a copy can never be mistaken for a managed assistant, even when it is left
behind (a killed process). Knowledge files are reused by content: a file whose sha256 matches
an upload in the lock is attached by that upload's id; only the others are uploaded, and only
those are deleted afterwards. :meth:`Copies.close` deletes every copy and upload it made,
whatever happened (a failed run, Ctrl-C); managed assistants and the lock are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistsync.api import ApiClient
from assistsync.errors import AssistsyncError
from assistsync.model import Desired, Lock

COPY_TAG = "assistsync_test_copy"
"""Metadata key on a test copy: the manifest key it copies (not the ownership tag)."""


@dataclass
class Copies:
    """Creates and removes test copies (see the module docstring)."""

    client: ApiClient
    desired: Desired
    lock: Lock
    root: Path
    assistants: dict[str, str] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # sha256 -> id, ours to delete

    def file_id(self, path: str) -> str:
        wanted = self.desired.files[path].sha256
        for locked in self.lock.files.values():
            if locked.sha256 == wanted:
                return locked.id
        if wanted not in self.uploads:
            live = self.client.upload_file(self.root / path, Path(path).name)
            self.uploads[wanted] = live.id
        return self.uploads[wanted]

    def create(self, keys: list[str]) -> dict[str, str]:
        """A copy of each assistant in ``keys``; returns key -> copy id."""
        for key in keys:
            spec = self.desired.assistants[key]
            body: dict[str, Any] = {
                "model": spec.model,
                "tools": list(spec.tools),
                "file_ids": [self.file_id(p) for p in spec.files],
                "metadata": {**spec.metadata, COPY_TAG: key},
            }
            for name in ("name", "description", "instructions"):
                value = getattr(spec, name)
                if value is not None:
                    body[name] = value
            self.assistants[key] = self.client.create_assistant(body).id
        return dict(self.assistants)

    def close(self) -> list[str]:
        """Delete every copy and upload made; returns what could not be deleted (messages)."""
        problems = []
        for key, assistant_id in list(self.assistants.items()):
            try:
                self.client.delete_assistant(assistant_id)
                del self.assistants[key]
            except AssistsyncError as exc:
                problems.append(f"test copy of {key} ({assistant_id}): {exc}")
        for sha, file_id in list(self.uploads.items()):
            try:
                self.client.delete_file(file_id)
                del self.uploads[sha]
            except AssistsyncError as exc:
                problems.append(f"upload {file_id}: {exc}")
        return problems
