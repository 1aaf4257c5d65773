"""Manifests written with ruamel.yaml's round-trip mode: an existing manifest keeps its
comments, quoting and order when entries are appended to it.

The loader reads with a faster path (``assistsync.manifest.source``); writing is rare, and
round-tripping is what keeps a user's file as they wrote it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from assistsync.errors import AssistsyncError


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold a long value across lines
    yaml.allow_unicode = True
    return yaml


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list):
        return CommentedSeq(_commented(v) for v in value)
    return value


_DUMPER = _yaml()
"""One dumper for every manifest an import writes (making one costs more than a dump); the
import writes from one thread."""


def _dump(data: Any) -> str:
    buffer = io.StringIO()
    _DUMPER.dump(data, buffer)
    return buffer.getvalue()


def new_manifest(entries: dict[str, dict[str, Any]], header: str) -> str:
    """A new manifest holding ``entries`` (key -> entry), with ``header`` as its first comment."""
    doc = CommentedMap()
    doc["assistants"] = _commented(entries)
    doc.yaml_set_start_comment(header)
    return _dump(doc)


def appended(path: Path, text: str, entries: dict[str, dict[str, Any]], rel: str) -> str:
    """``text`` (the manifest at ``path``) with ``entries`` appended under ``assistants``,
    everything else (comments, quoting, order) kept. Raises ``AssistsyncError`` when the file
    is not a manifest to append to."""
    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        raise AssistsyncError(
            f"{rel}: cannot append to it, it is not valid YAML ({exc}). Fix it (assistsync "
            "validate) or import into another file with --into."
        ) from exc
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise AssistsyncError(f"{rel}: cannot append to it: it is not a mapping.")
    assistants = doc.get("assistants")
    if assistants is None:
        assistants = doc["assistants"] = CommentedMap()
    if not isinstance(assistants, CommentedMap):
        raise AssistsyncError(f"{rel}: cannot append to it: 'assistants' is not a mapping.")
    assistants.fa.set_block_style()  # `assistants: {}` grows into a block, not one long line
    for key, entry in entries.items():
        assistants[key] = _commented(entry)
    return _dump(doc)
