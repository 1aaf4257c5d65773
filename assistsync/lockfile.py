"""Read and write the lock file: deterministic JSON, atomic replace, one writer at a time.

The lock is committed next to the manifests, so its text must only change when its content
does: sorted keys, one line per assistant and per file, a trailing newline, no timestamps.
Every write goes to a temporary file in the same directory, is fsynced, and replaces the lock
with ``os.replace``; the previous version is kept as ``.assistsync/<lock>.backup``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import socket
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import BaseModel, ValidationError

from assistsync.errors import AssistsyncError, LockBusyError, LockWriteError
from assistsync.model import LOCK_VERSION, Lock

DEFAULT_MODE = 0o644
"""A new lock is readable by all: it holds ids and hashes, never a secret."""


def new_lock() -> Lock:
    """An empty lock, as read when there is no lock file. Its lineage is set on first write
    (``with_lineage``), so plans made before the first apply stay comparable."""
    return Lock(lineage="", serial=0)


def with_lineage(lock: Lock) -> Lock:
    """``lock`` with a lineage: kept when it has one, a fresh UUID when it is new."""
    return lock.with_lineage()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_location(root: Path, path: Path) -> None:
    """Refuse a lock path whose real location (symlinks followed) is outside the project.

    The lock and ``.assistsync/`` beside it are written on every apply; a directory symlink
    on the way must not make assistsync write somewhere else.
    """
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root:
        raise AssistsyncError(
            f"{path}: the lock file's real path {real} is outside the project directory "
            f"{real_root} (a symlink leads there). Point 'lock:' in assistsync.yaml at a path "
            "inside the project."
        )


def _compact(value: object) -> str:
    # no indent: the json module's C encoder, ~10x faster than indented output
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


class _SectionText:
    """The lines of one section of the lock, kept sorted, updated from one lock to the next.

    Locks are copied with unchanged entries shared (``Lock.with_assistant`` and the like), so
    consecutive writes of an apply differ in a few entries: those are found by identity, their
    lines made once and put in place by bisection; a write is then one pass of identity checks
    and a join, instead of serialising and sorting every entry again (which made an apply's
    lock writes grow with the square of the project). Holding the entries makes the identity
    check safe: a line is reused only for the very object it was made from.
    """

    def __init__(self) -> None:
        self.entries: dict[str, BaseModel] = {}
        self.keys: list[str] = []
        self.lines: list[str] = []
        self.source: Mapping[str, BaseModel] | None = None
        self.body = ""

    def text(self, entries: Mapping[str, BaseModel]) -> str:
        """The section's entry lines for ``entries``, joined (without the braces)."""
        if entries is self.source:
            return self.body
        known = self.entries
        changed = [key for key, entry in entries.items() if known.get(key) is not entry]
        if len(known) + sum(key not in known for key in changed) != len(entries):
            for key in known.keys() - entries.keys():
                i = bisect.bisect_left(self.keys, key)
                del self.keys[i], self.lines[i], known[key]
        for key in changed:
            entry = entries[key]
            line = f"    {_compact(key)}: {_compact(entry.model_dump(mode='json'))}"
            i = bisect.bisect_left(self.keys, key)
            if key in known:
                self.lines[i] = line
            else:
                self.keys.insert(i, key)
                self.lines.insert(i, line)
            known[key] = entry
        self.source = entries
        self.body = ",\n".join(self.lines)
        return self.body


_SECTIONS: dict[str, _SectionText] = {}
_SECTIONS_LOCK = threading.Lock()


def _section(name: str, entries: Mapping[str, BaseModel]) -> list[str]:
    if not entries:
        return [f"  {_compact(name)}: {{}}"]
    with _SECTIONS_LOCK:
        body = _SECTIONS.setdefault(name, _SectionText()).text(entries)
    return [f"  {_compact(name)}: {{", body, "  }"]


def lock_text(lock: Lock) -> str:
    """The exact text written for ``lock``: deterministic JSON, one line per assistant and per
    file, keys sorted, a trailing newline.

    One line per entry keeps a change to one assistant a one-line diff in review, and lets the
    lock be rewritten after every change of a 1,000-assistant apply without dominating it.
    """
    sections = {
        "assistants": _section("assistants", lock.assistants),
        "files": _section("files", lock.files),
        "retired": _section("retired", lock.retired),
        "lineage": [f"  {_compact('lineage')}: {_compact(lock.lineage)}"],
        "serial": [f"  {_compact('serial')}: {lock.serial}"],
        "version": [f"  {_compact('version')}: {lock.version}"],
    }
    assert set(sections) == set(Lock.model_fields), "lock_text must write every Lock field"
    parts = ["{"]
    names = sorted(sections)
    for i, name in enumerate(names):
        part = sections[name]
        if i < len(names) - 1:
            part = [*part[:-1], part[-1] + ","]
        parts += part
    parts.append("}\n")
    # one join: the sections' bodies are the bulk of the text, copied once
    return "\n".join(parts)


_CONFLICT = re.compile(r"^(<{7}|={7}|>{7})(\s|$)", re.MULTILINE)


def _damaged(path: Path, what: str) -> AssistsyncError:
    return AssistsyncError(
        f"{path}: {what}. Restore it from git or from {STATE_DIR}/{path.name}.backup, or delete "
        "it: plan then finds the assistants assistsync created by their tags."
    )


def read_lock(path: Path) -> Lock:
    """The lock at ``path``, or a new empty lock when the file does not exist.

    Reads the current version and version 1 (retired uploads then lived in ``files`` under
    ``<path>@<sha256 prefix>``); the next write is the current version.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return new_lock()
    except UnicodeDecodeError as exc:
        raise _damaged(path, f"the lock file is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise AssistsyncError(f"{path}: cannot read the lock file: {_reason(exc)}.") from exc
    conflict = _CONFLICT.search(text)
    if conflict is not None:
        line = text.count("\n", 0, conflict.start()) + 1
        raise AssistsyncError(
            f"{path}:{line}: the lock file has git merge conflicts. Take either side whole "
            f"(for example 'git checkout --theirs -- {path.name}', then 'git add {path.name}') "
            "and run plan again: assistants the other side created are found by their tags and "
            "imported, so nothing is created twice."
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _damaged(
            path, f"the lock file is not valid JSON at {exc.lineno}:{exc.colno} ({exc.msg})"
        ) from exc
    version = data.get("version") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > LOCK_VERSION:
        raise AssistsyncError(
            f"{path}: lock version {version} is newer than this assistsync understands "
            f"({LOCK_VERSION}). Upgrade assistsync."
        )
    if version == 1 and isinstance(data, dict):
        data = Lock.from_version_1(data)
    try:
        return Lock.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _damaged(
            path, f"the lock file is damaged at {where or 'top level'}: {first['msg']}"
        ) from exc


def write_lock(path: Path, lock: Lock) -> None:
    """Atomically replace the lock at ``path`` with ``lock``, keeping the previous version as
    ``.assistsync/<lock>.backup`` (beside the project's other run-time files, out of git). The
    lock keeps the permissions it had (a new one gets 0644).

    Raises ``LockWriteError`` when the file cannot be written (disk full, permissions).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lock_text(lock), backup=True)
    except OSError as exc:
        raise LockWriteError(
            f"{path}: cannot write the lock file: {_reason(exc)}.", reason=_reason(exc)
        ) from exc


def check_writable(path: Path) -> None:
    """Raise ``LockWriteError`` unless the lock at ``path`` and ``.assistsync/`` beside it can
    be written: called before an apply's first change, so a read-only project changes nothing.

    Creates (and removes) a temporary file where each write makes one; it cannot promise that
    the disk will not fill up later (apply handles that when it happens).
    """
    state = state_dir(path.parent)
    for where in (path.parent, state):
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=where)
            os.close(fd)
            os.unlink(tmp)
        except OSError as exc:
            raise LockWriteError(
                f"{path}: cannot write the lock file ({where} is not writable: "
                f"{_reason(exc)}). Nothing was changed; make it writable and run apply again.",
                reason=_reason(exc),
            ) from exc


def write_atomically(path: Path, text: str, *, backup: bool = False) -> None:
    """Replace ``path`` with ``text``: a temporary file beside it, fsynced, then ``os.replace``.

    The file keeps its permission bits (``DEFAULT_MODE`` when new). With ``backup``, the
    previous version is kept as ``.assistsync/<name>.backup``. Raises ``OSError``.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = DEFAULT_MODE
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if backup and path.exists():
            # a hard link, not a rename: there is never a moment without a lock file
            copy = state_dir(path.parent) / f"{path.name}.backup"
            with contextlib.suppress(OSError):
                os.unlink(copy)
            with contextlib.suppress(OSError):
                os.link(path, copy)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


STATE_DIR = ".assistsync"


def state_dir(project: Path) -> Path:
    """``project/.assistsync``, created with a ``.gitignore`` of ``*``: sandbox state and
    run-time locks never show up as changes, whatever the project's own ignore rules."""
    state = project / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LockWriteError(
            f"{STATE_DIR}/: cannot create assistsync's state directory: {_reason(exc)}. "
            "assistsync keeps run-time locks, the lock's backup and the sandbox there; make it a "
            "writable directory of the project (remove a file that stands in its place).",
            reason=_reason(exc),
        ) from exc
    ignore = state / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text("# created by assistsync: nothing here belongs in git\n*\n")
    return state


def _stale_temp_files(path: Path) -> list[Path]:
    """Temporary files a killed lock write left beside ``path`` (names ``mkstemp`` made)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp$")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return [path.parent / n for n in sorted(names) if pattern.match(n)]


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the one-writer lock of the lock file at ``path`` for the duration of a run.

    The OS-level lock lives in ``.assistsync/`` beside the lock file (ignored by git), so it
    never shows up as a change; the OS releases it when a process dies. A second process gets a
    ``LockBusyError`` naming the holder instead of waiting. Holding it, stale temporary files of
    killed lock writes (``.<lock>.XXXXXXXX.tmp``) are removed: only one writer makes them.
    """
    from filelock import FileLock, Timeout  # lazy: only apply needs it

    state = state_dir(path.parent)
    holder_file = state / f"{path.name}.holder"
    flock = FileLock(str(state / f"{path.name}.lck"))
    try:
        flock.acquire(timeout=0)
    except Timeout as exc:
        try:
            holder = holder_file.read_text(encoding="utf-8").strip()
        except OSError:
            holder = "another process"
        raise LockBusyError(
            f"{path.name} is held by {holder}: another apply is running on this project. "
            "Wait for it to finish, then run again."
        ) from exc
    except OSError as exc:  # after Timeout, which is an OSError too
        raise LockWriteError(
            f"{state}: cannot take the one-writer lock: {_reason(exc)}. Nothing was changed; "
            "make the project directory writable.",
            reason=_reason(exc),
        ) from exc
    try:
        with contextlib.suppress(OSError):  # only informative; the OS lock is what counts
            holder_file.write_text(
                f"assistsync pid {os.getpid()} on {socket.gethostname()}\n", encoding="utf-8"
            )
        # no other apply runs now: a temporary file beside the lock is a killed write's
        for stale in _stale_temp_files(path):
            with contextlib.suppress(OSError):
                stale.unlink()
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_file.unlink()
        flock.release()
