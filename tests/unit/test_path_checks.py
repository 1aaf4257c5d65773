"""The loader's path checks, made cheaper, answer exactly as the plain formulation does.

``files.existing_file`` checks a path with one ``lstat`` (and each directory's real path once
per load) where it took ``realpath`` of the whole path and three ``stat`` calls; ``inside``
compares strings where it built ``Path`` objects; absolute paths are recognised without
``PurePosixPath``/``PureWindowsPath``. Each is compared here with the formulation it replaced,
over trees holding symlinks (inside, outside, to directories, dangling, in loops) and FIFOs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistsync.manifest import files
from assistsync.manifest.files import PathProblem

_DRIVE = re.compile(r"^[A-Za-z]:")


def reference_existing_file(root: Path, base: Path, raw: str, what: str) -> Path:
    """``existing_file`` as it was first written (pathlib throughout)."""
    if not raw.strip():
        raise PathProblem(f"{what} is empty")
    if "\0" in raw:
        raise PathProblem(f"{what} {raw!r} contains a NUL character, which no file name can hold")
    if not files.is_utf8(raw):
        raise PathProblem(f"{what} {raw!r} is not valid UTF-8")
    if (
        PurePosixPath(raw).is_absolute()
        or PureWindowsPath(raw).is_absolute()
        or raw.startswith("\\")
        or _DRIVE.match(raw)
    ):
        raise PathProblem(
            f"{what} {raw!r} is absolute; paths are relative to the file that names them"
        )
    path = Path(os.path.normpath(base / raw))
    if not path.is_relative_to(root):
        raise PathProblem(f"{what} {raw!r} leaves the project directory")
    try:
        real = os.path.realpath(path)
        if not Path(real).is_relative_to(root):
            raise PathProblem(
                f"{what} {raw!r} is a symlink to {files.relative(root, real)}, outside the "
                "project directory"
            )
        if path.is_dir():
            raise PathProblem(f"{what} {raw!r} is a directory")
        if not path.is_file():
            if path.exists():
                raise PathProblem(f"{what} {raw!r} is not a regular file")
            raise PathProblem(f"{what} {raw!r} not found")
    except OSError as exc:
        raise PathProblem(f"{what} {raw!r} cannot be used: {exc.strerror or exc}") from exc
    return path


def outcome(check: object, *args: object) -> str:
    try:
        return str(check(*args))  # type: ignore[operator]
    except PathProblem as exc:
        return f"problem: {exc}"


def tree(tmp: Path) -> tuple[Path, list[str]]:
    """A project with every kind of entry a manifest might name, and names to try."""
    root = tmp / "proj"
    for d in ("prompts/sub", "docs", "other"):
        (root / d).mkdir(parents=True)
    (tmp / "outside").mkdir()
    (tmp / "outside" / "x.md").write_text("x")
    (root / "prompts" / "a.md").write_text("a")
    (root / "prompts" / "sub" / "b.md").write_text("b")
    (root / "docs" / "c.txt").write_text("c")
    os.mkfifo(root / "docs" / "fifo")
    links = {
        "prompts/in.md": "a.md",
        "prompts/out.md": str(tmp / "outside" / "x.md"),
        "prompts/dangling.md": "nope.md",
        "prompts/loop.md": "loop.md",
        "linkdir": "prompts",
        "outdir": str(tmp / "outside"),
        "docs/dirlink": "../other",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    names = [
        "prompts/a.md",
        "prompts/sub/b.md",
        "prompts/sub/../a.md",
        "docs/c.txt",
        "docs/fifo",
        "docs",
        "docs/dirlink",
        "prompts/missing.md",
        "missing/dir/x.md",
        "prompts/a.md/x",
        "../outside/x.md",
        "linkdir/a.md",
        "linkdir/sub/b.md",
        "outdir/x.md",
        "outdir/none.md",
        *links,
        "/etc/passwd",
        "C:x",
        "\\\\srv\\share",
        " ",
        "a\0b",
        "\udcff.md",
        "n" * 300,
    ]
    return root, names


def test_existing_file_answers_as_before(tmp_path: Path) -> None:
    root, names = tree(tmp_path)
    dirs: files.RealDirs = {}
    for base in (root, root / "prompts", root / "linkdir", root / "docs"):
        for raw in names:
            for rel in (raw, f"../{raw}", f"./{raw}"):
                expected = outcome(reference_existing_file, root, base, rel, "file")
                assert outcome(files.existing_file, root, base, rel, "file") == expected, rel
                # the directories' real paths kept from one call to the next change nothing
                fast = outcome(files.existing_file, root, base, rel, "file", dirs)
                assert fast == expected, rel


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(alphabet=st.sampled_from("/\\:.aC ?*x"), max_size=8))
def test_absolute_paths_are_recognised_as_before(raw: str) -> None:
    before = bool(
        PurePosixPath(raw).is_absolute()
        or PureWindowsPath(raw).is_absolute()
        or raw.startswith("\\")
        or _DRIVE.match(raw)
    )
    after = bool(raw.startswith(("/", "\\")) or _DRIVE.match(raw))
    assert after == before


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        ("/a", "/a", True),
        ("/a", "/a/b", True),
        ("/a", "/ab", False),
        ("/a", "/", False),
        ("/", "/x", True),
        ("/a/b", "/a", False),
    ],
)
def test_inside_is_is_relative_to(root: str, path: str, expected: bool) -> None:
    assert Path(path).is_relative_to(root) is expected
    assert files.inside(Path(root), path) is expected


def test_relative_names_are_relpath_names(tmp_path: Path) -> None:
    root, names = tree(tmp_path)
    for raw in [*names, "", ".", "a//b", "a/./b", "a/../../x", "prompts/"]:
        for path in (f"{root}/{raw}", os.path.join(str(root), raw), f"/elsewhere/{raw}"):
            if "\0" in path:
                continue
            expected = Path(os.path.relpath(path, root)).as_posix()
            assert files.relative(root, path) == expected, path
            assert (
                files.relative(root, Path(path))
                == Path(os.path.relpath(Path(path), root)).as_posix()
            )
