"""Local paths named by the user's files: containment checks, globs, reading and hashing.

Every path is relative to the file that names it and must stay inside the project directory,
both as written (no ``..`` escape, no absolute path) and after symlinks are resolved.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHUNK_BYTES = 1024 * 1024
"""Files are hashed in 1 MiB chunks: knowledge files can be hundreds of MB."""

_DRIVE = re.compile(r"^[A-Za-z]:")

_MISSING = frozenset((errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP))
"""What ``Path.exists`` reads as "no such file" rather than raising."""


class PathProblem(Exception):
    """A path the user wrote cannot be used; the message says why."""


def has_magic(pattern: str) -> bool:
    """True when ``pattern`` is a glob rather than a literal path."""
    return any(c in pattern for c in "*?[")


def inside(root: Path | str, path: Path | str) -> bool:
    """Whether ``path`` (absolute, normalised) is ``root`` (resolved) or below it.

    On strings: the same answer as ``Path.is_relative_to`` for normalised absolute paths, and
    the loader asks it twice for every path a manifest names."""
    top, below = os.fspath(root), os.fspath(path)
    return below == top or below.startswith(top if top.endswith(os.sep) else top + os.sep)


def check_relative(root: Path, base: Path, raw: str, what: str) -> Path:
    """``base / raw`` normalised, after checking it is relative and stays inside ``root``.

    ``root`` must already be resolved (no symlinks). The result is lexical (symlinks kept), so
    the project-relative name a user sees is the one they wrote.
    """
    if not raw.strip():
        raise PathProblem(f"{what} is empty")
    if "\0" in raw:
        raise PathProblem(f"{what} {raw!r} contains a NUL character, which no file name can hold")
    if not is_utf8(raw):
        raise PathProblem(f"{what} {raw!r} is not valid UTF-8")
    # Absolute for POSIX ('/'), or for Windows: a drive ('C:', even 'C:x') or a root ('\\x',
    # '//server/share'); what PureWindowsPath calls absolute is always one of these.
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise PathProblem(
            f"{what} {raw!r} is absolute; paths are relative to the file that names them"
        )
    lexical = os.path.normpath(os.path.join(base, raw))
    if not inside(root, lexical):
        raise PathProblem(f"{what} {raw!r} leaves the project directory")
    return Path(lexical)


def relative(root: Path, path: Path | str) -> str:
    """``path`` as messages show it: relative to the project (``../`` for one outside it)."""
    top, below = os.fspath(root), os.fspath(path)
    # The common case, a normalised path below the root, without relpath's two abspath calls
    # (the loader names every file it resolves).
    if os.sep == "/" and below.startswith(top + "/") and os.path.normpath(below) == below:
        return below[len(top) + 1 :]
    return Path(os.path.relpath(path, root)).as_posix()


def check_real(root: Path, path: Path, raw: str, what: str) -> None:
    """Reject a path whose symlinks lead outside the project."""
    _check_inside(root, os.path.realpath(path), raw, what)


def _check_inside(root: Path, real: str, raw: str, what: str) -> None:
    if not inside(root, real):
        raise PathProblem(
            f"{what} {raw!r} is a symlink to {relative(root, real)}, outside the project directory"
        )


RealDirs = dict[str, str]
"""``os.path.realpath`` of directories, kept for one load (many files share a directory)."""


def _plain_file_mode(root: Path, path: Path, raw: str, what: str, dirs: RealDirs) -> int | None:
    """``check_real`` and the file's mode in one ``lstat``, for a path that is not itself a
    symlink: its real path is then its directory's (kept in ``dirs``) joined with its name,
    as ``os.path.realpath`` resolves it. ``None`` when that does not apply (a symlink, or
    nothing there): the caller takes the general way, which reports it."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return None
    parent, name = os.path.split(path)
    real = dirs.get(parent)
    if real is None:
        real = dirs[parent] = os.path.realpath(parent)
    _check_inside(root, os.path.join(real, name), raw, what)
    return mode


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: names and values from the environment or the
    file system can hold lone surrogates (undecodable bytes), which no API request can carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextmanager
def _os_problems(what: str, raw: str) -> Iterator[None]:
    """What the file system refuses about a path (too long a name, a loop of symlinks, no
    permission) becomes a ``PathProblem`` about the entry that named it."""
    try:
        yield
    except OSError as exc:
        raise PathProblem(f"{what} {raw!r} cannot be used: {exc.strerror or exc}") from exc
    except (UnicodeError, ValueError) as exc:
        raise PathProblem(f"{what} {raw!r} cannot be a file name: {exc}") from exc


def existing_file(
    root: Path, base: Path, raw: str, what: str, dirs: RealDirs | None = None
) -> Path:
    """A literal path that must name an existing regular file inside the project.

    ``dirs``, when given, keeps the real path of each directory met, for the next call."""
    path = check_relative(root, base, raw, what)
    with _os_problems(what, raw):
        mode = None if dirs is None else _plain_file_mode(root, path, raw, what, dirs)
        if mode is None:
            check_real(root, path, raw, what)
            try:
                mode = os.stat(path).st_mode  # one call where is_dir, is_file, exists took three
            except OSError as exc:
                if exc.errno in _MISSING:
                    raise PathProblem(f"{what} {raw!r} not found") from None
                raise
        if stat.S_ISDIR(mode):
            raise PathProblem(f"{what} {raw!r} is a directory")
        if not stat.S_ISREG(mode):  # a FIFO, socket or device: reading it could block forever
            raise PathProblem(f"{what} {raw!r} is not a regular file")
    return path


def expand(
    root: Path, base: Path, raw: str, what: str, dirs: RealDirs | None = None
) -> tuple[list[Path], list[str]]:
    """The files a path or glob names (sorted), and problems with individual matches.

    Raises ``PathProblem`` when the entry itself is wrong (absolute, escaping, nothing found).
    ``**`` matches any depth; like the shell, ``*`` skips names starting with a dot.
    """
    if not has_magic(raw):
        return [existing_file(root, base, raw, what, dirs)], []
    check_relative(root, base, raw, what)
    found: list[Path] = []
    problems: list[str] = []
    with _os_problems(what, raw):
        matches = glob.glob(os.path.join(glob.escape(str(base)), raw), recursive=True)
        for match in sorted(matches):
            path = Path(os.path.normpath(match))
            if not path.is_file():
                continue
            if not inside(root, path):
                problems.append(
                    f"{what} {raw!r} matches {relative(root, path)}, outside the project directory"
                )
                continue
            if not is_utf8(relative(root, path)):
                problems.append(
                    f"{what} {raw!r} matches {relative(root, path)!r}, whose name is not valid "
                    "UTF-8; rename it"
                )
                continue
            try:
                check_real(root, path, os.path.relpath(path, base), what)
            except PathProblem as exc:
                problems.append(str(exc))
                continue
            found.append(path)
    if not found and not problems:
        raise PathProblem(f"{what} {raw!r} matches no file")
    return found, problems


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of a file, read in 1 MiB chunks (never whole)."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_BYTES)
    view = memoryview(buffer)
    size = 0
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


@dataclass(frozen=True)
class BadUtf8:
    """Where a file stops being UTF-8: the 1-based line and column (in characters) of the first
    byte that cannot be decoded, and that byte."""

    line: int
    col: int
    byte: int

    def message(self, context: str = "") -> str:
        """The diagnostic at (``line``, ``col``); ``context`` says why the file was read."""
        return (
            f"not valid UTF-8{context}: byte 0x{self.byte:02x} cannot be decoded; "
            "save the file as UTF-8"
        )


def decode_utf8(data: bytes) -> str | BadUtf8:
    """The text (a UTF-8 BOM dropped, line endings kept), or where it stops being UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        prefix = data[start : exc.start].decode("utf-8-sig")  # valid: decoding stopped later
        return BadUtf8(data.count(b"\n", 0, exc.start) + 1, len(prefix) + 1, data[exc.start])
