"""The one-way data flow, enforced: who may import whom inside assistsync (see README, Layout).

model is pure data; manifest and api never import each other; planner, render and lockfile see
only the model; the server imports nothing else from assistsync, so client and server cannot
share a misunderstanding of the wire contract.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "assistsync"

# component -> assistsync components it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "errors": set(),
    "manifest": {"model", "errors"},
    "api": {"model", "errors", "__init__"},
    "fetch": {"api", "model", "errors"},
    "planner": {"model"},
    "render": {"model"},
    "lockfile": {"model", "errors"},
    "applier": {"api", "model", "errors"},
    "server": set(),
}


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {component(n) for n in names if n == "assistsync" or n.startswith("assistsync.")}
    return found


def files_of(name: str) -> list[Path]:
    single = PACKAGE / f"{name}.py"
    return [single] if single.exists() else sorted((PACKAGE / name).rglob("*.py"))


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_imports_follow_the_data_flow(name: str) -> None:
    files = files_of(name)
    assert files, f"assistsync/{name} is missing"
    for path in files:
        extra = imports_of(path) - ALLOWED[name] - {name}
        assert not extra, f"{path.relative_to(PACKAGE.parent)} imports {sorted(extra)}"


def test_the_checker_sees_imports() -> None:
    # the rule above must be able to fail: the CLI wires everything, so it imports a lot
    assert {"api", "manifest", "server"} <= set().union(*map(imports_of, files_of("cli")))


def test_retrieval_is_a_library_of_the_server() -> None:
    # The files endpoint and the run engine call retrieval; it calls nothing of theirs, so it
    # can be tested (and benchmarked) on a bare SQLite connection.
    for path in sorted((PACKAGE / "server" / "retrieval").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["(relative)"]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                inside = name.startswith("assistsync.server.retrieval")
                assert inside or not name.startswith(("assistsync", "(relative)")), (
                    f"{path.relative_to(PACKAGE.parent)} imports {name}"
                )
