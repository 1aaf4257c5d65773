"""The runner's text protocols: workflow commands on stdout, ``$GITHUB_OUTPUT``, job summary.

Escaping follows ``@actions/core`` (toolkit ``command.ts``): message data escapes ``%``, CR and
LF; property values additionally escape ``:`` and ``,``, which would otherwise end the value.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Mapping
from pathlib import Path

from assistsync.errors import AssistsyncError, Diagnostic


def escape_data(text: str) -> str:
    """Escape a workflow command's message (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (``file=...``, ``title=...``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: str | int | None) -> str:
    """One workflow command line, e.g. ``::error file=a.yaml,line=3::message``."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and value != ""
    )
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def repo_path(working_directory: str, file: str) -> str:
    """A project-relative path as a repository-relative one (what annotations need)."""
    joined = posixpath.normpath(posixpath.join(working_directory.replace("\\", "/"), file))
    return "." if joined in ("", ".") else joined.removeprefix("./")


def diagnostic_annotation(working_directory: str, diagnostic: Diagnostic) -> str:
    """``::error file=...,line=...,col=...,title=...::message`` for one manifest problem."""
    return command(
        "error",
        diagnostic.message,
        file=repo_path(working_directory, diagnostic.file),
        line=diagnostic.line,
        col=diagnostic.col,
        title="assistsync: invalid manifest",
    )


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` in the multiline-safe heredoc form.

    Each value is framed by a random delimiter that cannot occur in it (as ``@actions/core``
    does), so values with newlines or ``=`` arrive intact.
    """
    text = ""
    for name, value in outputs.items():
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        while delimiter in value:  # pragma: no cover - 122 random bits
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
        text += f"{name}<<{delimiter}\n{value}\n{delimiter}\n"
    _append(path, text, "the step's outputs ($GITHUB_OUTPUT)")


def append_summary(path: Path, markdown: str) -> None:
    """Append markdown to the job summary (``$GITHUB_STEP_SUMMARY``)."""
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    _append(path, text, "the job summary ($GITHUB_STEP_SUMMARY)")


def _append(path: Path, text: str, what: str) -> None:
    """Append to a file the runner reads; a file that cannot be written is one clear error."""
    try:
        with path.open("a", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise AssistsyncError(f"{path}: cannot write {what}: {exc.strerror or exc}.") from exc
