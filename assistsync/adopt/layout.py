"""Where an import writes, and what: the project's layout for each taken assistant.

* the manifest: ``--into FILE`` (appended to), else ``<manifest dir>/<key>.yaml``, in a
  directory the project's manifest globs cover;
* instructions longer than ``INLINE_INSTRUCTIONS`` characters, or on several lines, go to
  ``prompts/<key>.md`` (byte for byte); shorter ones stay inline;
* each function's parameters go to ``functions/<key>/<name>.json``;
* attached files go to ``docs/<key>/<filename>`` under the first assistant (in import order)
  that has them: a file shared by several assistants is downloaded and named once. Content
  that turns out identical under two file ids is kept once too (see ``Adopter``).

Every string value is written so that the loader reads it back unchanged: ``${`` is escaped as
``$${``, which the loader reads as a literal ``${``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistsync.adopt.choose import Taken
from assistsync.model import TAG_KEY, LiveFile

INLINE_INSTRUCTIONS = 160
"""Instructions up to this many characters, on one line, stay in the manifest; longer ones get
a prompt file, where they can be reviewed as text (a diff per line) instead of one long line."""

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def literal(text: str) -> str:
    """``text`` as a manifest string the loader reads back as ``text`` (``${`` escaped)."""
    return text.replace("${", "$${")


def inline_instructions(text: str) -> bool:
    """Whether instructions stay in the manifest (short, one printable line, or starting with a
    byte-order mark, which a prompt file would lose)."""
    if text.startswith("\ufeff"):
        return True
    return len(text) <= INLINE_INSTRUCTIONS and text.isprintable()


def safe_filename(name: str, fallback: str) -> str:
    """A file name that is no glob and no hidden file: ``Q&A (2024).pdf`` -> ``Q-A-2024-.pdf``."""
    base = re.split(r"[\\/]", name)[-1]
    safe = _UNSAFE_NAME.sub("-", base).lstrip(".-")
    return safe if safe not in ("", ".", "..") else fallback


def _unique_in(directory: Path, name: str, used: set[Path]) -> Path:
    path = directory / name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    n = 1
    while path in used:
        n += 1
        path = directory / (f"{stem}-{n}.{ext}" if ext else f"{stem}-{n}")
    used.add(path)
    return path


@dataclass
class Layout:
    """Every path an import writes, decided before anything is downloaded."""

    root: Path
    manifest_of: dict[str, Path] = field(default_factory=dict)
    """key -> the manifest file its entry goes to."""
    texts: dict[Path, str] = field(default_factory=dict)
    """prompt and parameters files -> their text."""
    prompt_of: dict[str, Path] = field(default_factory=dict)
    functions_of: dict[tuple[str, str], Path] = field(default_factory=dict)
    """(key, function name) -> parameters file."""
    doc_of: dict[str, Path] = field(default_factory=dict)
    """file id -> where its content goes (before identical contents are merged)."""
    file_names: dict[str, LiveFile] = field(default_factory=dict)
    known: dict[str, Path] = field(default_factory=dict)
    """file id -> the project file the lock already records it for (nothing to download)."""
    owner_of: dict[str, str] = field(default_factory=dict)
    """file id -> the key of the first assistant that has it (whose docs/<key>/ holds it)."""

    def texts_of(self, keys: set[str]) -> dict[Path, str]:
        """The prompt and parameters files of the assistants ``keys``."""
        paths = [p for k, p in self.prompt_of.items() if k in keys]
        paths += [p for (k, _), p in self.functions_of.items() if k in keys]
        return {p: self.texts[p] for p in paths}


def plan_layout(
    root: Path,
    taken: list[Taken],
    files: dict[str, LiveFile],
    manifest_of: dict[str, Path],
    known: dict[str, Path],
) -> Layout:
    """The paths of every file the import writes (see the module docs). Attached files in
    ``known`` are already the project's: they are referred to where they are."""
    layout = Layout(root=root, manifest_of=manifest_of, file_names=files, known=known)
    used: set[Path] = set()
    for t in taken:
        a = t.live
        if a.instructions is not None and not inline_instructions(a.instructions):
            path = root / "prompts" / f"{t.key}.md"
            layout.prompt_of[t.key] = path
            layout.texts[path] = a.instructions
        for tool in a.tools:
            fn = tool.get("function")
            if (
                tool.get("type") == "function"
                and isinstance(fn, dict)
                and fn.get("parameters") is not None
            ):
                path = root / "functions" / t.key / f"{fn['name']}.json"
                layout.functions_of[(t.key, fn["name"])] = path
                layout.texts[path] = (
                    json.dumps(fn["parameters"], indent=2, ensure_ascii=False) + "\n"
                )
        for file_id in a.file_ids:
            if file_id in layout.doc_of or file_id in known:
                continue
            listed = files.get(file_id)
            name = safe_filename(listed.filename if listed else "", file_id)
            layout.doc_of[file_id] = _unique_in(root / "docs" / t.key, name, used)
            layout.owner_of[file_id] = t.key
    return layout


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def manifest_entry(t: Taken, layout: Layout, doc_path: dict[str, Path]) -> dict[str, Any]:
    """The manifest entry of one taken assistant, as plain data in the manifest's field order.

    ``doc_path`` is where each attached file id's content was finally written (identical
    contents merged). Paths are relative to the manifest that holds the entry.
    """
    a = t.live
    base = layout.manifest_of[t.key].parent
    out: dict[str, Any] = {}
    if a.name is not None:
        out["name"] = literal(a.name)
    out["model"] = literal(a.model)
    if a.description is not None:
        out["description"] = literal(a.description)
    if t.key in layout.prompt_of:
        out["instructions_file"] = _rel(layout.prompt_of[t.key], base)
    elif a.instructions is not None:
        out["instructions"] = literal(a.instructions)
    if a.tools:
        tools: list[dict[str, Any]] = []
        for tool in a.tools:
            if tool.get("type") != "function":
                tools.append({"type": tool["type"]})
                continue
            fn = tool["function"]
            entry: dict[str, Any] = {"name": fn["name"]}
            if fn.get("description") is not None:
                entry["description"] = literal(fn["description"])
            if fn.get("parameters") is not None:
                entry["parameters_file"] = _rel(layout.functions_of[(t.key, fn["name"])], base)
            tools.append({"type": "function", "function": entry})
        out["tools"] = tools
    if a.file_ids:
        out["files"] = sorted({_rel(doc_path[i], base) for i in a.file_ids})
    metadata = {k: literal(v) for k, v in a.metadata.items() if k != TAG_KEY}
    if metadata:
        out["metadata"] = metadata
    return out
