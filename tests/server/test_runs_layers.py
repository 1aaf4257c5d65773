"""The run engine stands apart from HTTP: its modules import no framework, group or endpoint
code (only the database layer), so the engine can be driven — and tested — without a server,
and a model backend never sees a request."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNS = Path(__file__).resolve().parents[2] / "assistsync" / "server" / "runs"
ENGINE_SIDE = ("clock", "model", "echo", "events", "ports", "engine", "retrieval_step")
"""The engine and what it is built from; ``requests``, ``endpoints`` and ``conversation`` are
the HTTP side of the runs group."""
ALLOWED = {
    "assistsync.server.db",
    "assistsync.server.retrieval",  # the index library: no HTTP (test_architecture checks it)
    *(f"assistsync.server.runs.{name}" for name in ENGINE_SIDE),
}


def server_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("assistsync")}


@pytest.mark.parametrize("name", ENGINE_SIDE)
def test_the_engine_side_imports_no_http(name: str) -> None:
    imported = server_imports(RUNS / f"{name}.py")
    assert imported <= ALLOWED, f"runs/{name}.py imports {sorted(imported - ALLOWED)}"


def test_the_checker_sees_imports() -> None:
    # It must be able to fail: the endpoints import the framework.
    assert "assistsync.server.framework.routing" in server_imports(RUNS / "endpoints.py")
    assert not server_imports(RUNS / "endpoints.py") <= ALLOWED
