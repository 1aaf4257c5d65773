"""Where loaded projects are kept between runs: ``.assistsync/cache/``, one entry per environment.

This module only stores and fetches entries; what an entry records and how it is checked against
the project before it is used is the loader's business (``loader._from_cache``). The rules:

- **Verified, never trusted.** An entry is a header line, the SHA-256 of its body, and the body:
  a record of the inputs (one line of JSON) and the value (the loaded project, JSON). It is
  used only when the digest matches (a torn or edited entry does not), when it was written by
  the same loader (``code_digest``: assistsync's version, the source of the loader and the
  models, the versions of the libraries that decide what loads) and when the loader then finds
  every input it records unchanged. Anything else (missing, unreadable, truncated, another
  format) reads as "no entry", never as an error.
- **Written atomically, or not at all.** A temporary file in the same directory, then
  ``os.replace``. A project whose ``.assistsync/`` cannot be created or written (a read-only
  checkout, a file in its place) is simply not cached.
- **Safe to delete** at any time: the next load is a full one and writes a new entry. What a
  killed write leaves (a temporary file) is removed by a later write.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
import ruamel.yaml

FORMAT = 1
"""The layout of an entry's body; entries of another format are ignored."""

STATE_DIR = ".assistsync"
CACHE_DIR = f"{STATE_DIR}/cache"
_MAGIC = b"assistsync load cache\n"
_IGNORE = "# created by assistsync: nothing here belongs in git\n*\n"


@cache
def code_digest() -> str | None:
    """What decides how a project loads, besides the project itself: assistsync's version,
    the source of its loader and its models (so that a change to either, even without a new
    version number, makes old entries unusable), and the versions of Python, pydantic and
    ruamel.yaml. jsonschema, imported only for unusual parameter schemas, is recorded per
    entry (``library_version``). ``None`` (nothing is cached) when the source cannot be read."""
    package = Path(__file__).parents[1]
    digest = hashlib.sha256()
    versions = (
        sys.version,
        pydantic.VERSION,
        pydantic_core.__version__,
        ruamel.yaml.__version__,
    )
    digest.update(repr((FORMAT, versions)).encode())
    sources = [package / "__init__.py"]  # holds __version__
    for folder in ("manifest", "model"):
        sources += sorted((package / folder).glob("*.py"))
    try:
        for path in sources:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    except OSError:
        return None
    return digest.hexdigest() if len(sources) > 2 else None


def library_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (``None`` when it is not installed)."""
    from importlib import metadata  # ~20 ms to import: only for entries that need it

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


STALE_AFTER_S = 60.0
"""A temporary entry older than this was left by a write that was killed, not one under way."""
_TMP_PREFIX = ".load-"


def _remove_stale(folder: Path, before: float) -> None:
    """Remove what killed writes left in ``folder`` (temporary entries older than ``before``)."""
    for name in os.listdir(folder):
        if name.startswith(_TMP_PREFIX) and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                tmp = folder / name
                if tmp.stat().st_mtime < before:
                    tmp.unlink()


def entry_path(root: Path, environment: str | None) -> Path:
    """The one entry of ``root`` loaded as ``environment``."""
    name = "load.json"
    if environment is not None:
        name = f"load-{hashlib.sha256(environment.encode()).hexdigest()[:16]}.json"
    return root / CACHE_DIR / name


def read_entry(root: Path, environment: str | None) -> tuple[dict[str, Any], bytes] | None:
    """The record and the value of the entry for ``root`` as ``environment``, when it is
    intact and was written by this loader; ``None`` otherwise (whatever the reason)."""
    try:
        data = entry_path(root, environment).read_bytes()
    except (OSError, ValueError):
        return None
    if not data.startswith(_MAGIC):
        return None
    head, sep, body = data[len(_MAGIC) :].partition(b"\n")
    if not sep or hashlib.sha256(body).hexdigest().encode() != head:
        return None
    line, sep, value = body.partition(b"\n")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if (
        not sep
        or not isinstance(record, dict)
        or record.get("format") != FORMAT
        or code_digest() is None
        or record.get("code") != code_digest()
        or record.get("environment") != environment
    ):
        return None
    return record, value


def write_entry(root: Path, environment: str | None, record: dict[str, Any], value: bytes) -> None:
    """Store ``record`` (JSON data, on one line) and ``value`` (bytes, the loaded project as
    JSON) for ``root`` as ``environment``, atomically; silently nothing when
    ``.assistsync/cache/`` cannot be created or written."""
    if code_digest() is None:
        return
    line = json.dumps(
        {**record, "format": FORMAT, "code": code_digest(), "environment": environment},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8", "surrogatepass")
    body = line + b"\n" + value
    data = _MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
    path = entry_path(root, environment)
    state = root / STATE_DIR
    try:
        created = not state.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        if created:  # as the lock writer makes it: out of git whatever the project ignores
            (state / ".gitignore").write_text(_IGNORE, encoding="utf-8")
        _remove_stale(path.parent, time.time() - STALE_AFTER_S)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
