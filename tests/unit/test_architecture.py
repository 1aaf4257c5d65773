"""The one-way data flow, enforced: who may import whom inside assistsync (see README, Layout).

model is pure data; manifest and api never import each other; planner, render and lockfile see
only the model; the server imports nothing else from assistsync, so client and server cannot
share a misunderstanding of the wire contract.
"""

from __future__ import annotations

import ast
import sys
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
    "planfile": {"model", "errors", "lockfile"},
    "pipeline": {"api", "applier", "errors", "fetch", "lockfile", "manifest", "model", "planner"},
    "server": set(),
    "adopt": {"api", "errors", "fetch", "lockfile", "manifest", "model", "planner"},
    "testing": {"api", "manifest", "model", "errors", "lockfile", "pipeline"},
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


def test_the_load_cache_only_stores() -> None:
    # what an entry records and how it is checked is the loader's; the store knows no model
    assert imports_of(PACKAGE / "manifest" / "cache.py") == set()


def test_the_checker_sees_imports() -> None:
    # the rule above must be able to fail: the CLI wires everything, so it imports a lot
    assert {"api", "manifest", "server"} <= set().union(*map(imports_of, files_of("cli")))


# -- inside the server: framework <- db <- group support <- endpoint groups <- composition root ----

SERVER = PACKAGE / "server"
SERVER_LAYERS: dict[str, set[str]] = {
    # the HTTP framework knows no domain
    "framework": {"framework"},
    # the database layer may raise the framework's errors, nothing else
    "db": {"framework", "db"},
    # what an endpoint group is and the request fields groups share
    "support": {"framework", "db", "support"},
    # endpoint groups build on the layers below and on each other, never on the root
    "group": {"framework", "db", "support", "group"},
    # the composition root wires everything
    "root": {"framework", "db", "support", "group", "root"},
}
SUPPORT = {"group", "common"}
ROOT = {"app", "routes", "command"}


def server_layer(module: str) -> str:
    """The layer of a module under ``assistsync.server``."""
    parts = module.split(".")
    if len(parts) == 2:
        return "root"  # the package itself (its public entry points)
    name = parts[2]
    if name in ("framework", "db"):
        return name
    if name in SUPPORT:
        return "support"
    if name in ROOT:
        return "root"
    return "group"


def server_imports_of(path: Path) -> set[str]:
    """The ``assistsync.server`` modules ``path`` imports (``from pkg import mod`` resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("assistsync.server"):
                continue
            base = PACKAGE.parent / node.module.replace(".", "/")
            for alias in node.names:
                is_module = (base / f"{alias.name}.py").exists() or (base / alias.name).is_dir()
                found.add(f"{node.module}.{alias.name}" if is_module else node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("assistsync.server")}
    return found


def module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize(
    "path", sorted(SERVER.rglob("*.py")), ids=lambda p: str(p.relative_to(SERVER))
)
def test_server_layers(path: Path) -> None:
    layer = server_layer(module_of(path))
    for imported in server_imports_of(path):
        assert server_layer(imported) in SERVER_LAYERS[layer], (
            f"{path.relative_to(PACKAGE.parent)} ({layer}) imports {imported} "
            f"({server_layer(imported)})"
        )


def test_the_server_layer_checker_sees_imports() -> None:
    # must be able to fail: the root imports groups, and a group imports the framework
    assert "assistsync.server.assistants" in server_imports_of(SERVER / "routes.py")
    assert server_layer("assistsync.server.framework.http") == "framework"
    assert "group" not in SERVER_LAYERS["framework"]
    assert "root" not in SERVER_LAYERS["group"]


def test_retrieval_is_a_library_of_the_server() -> None:
    # The files endpoint and the run engine call retrieval; it calls nothing of theirs, so it
    # can be tested (and benchmarked) on a bare SQLite connection. Only its group module, which
    # registers its tables, knows the server (and is checked by the layer rules above).
    for path in sorted((PACKAGE / "server" / "retrieval").rglob("*.py")):
        if path.name == "group.py":
            continue
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


# -- model backends: the only outgoing HTTP of the server -------------------------------------

BACKENDS = SERVER / "backends"


def third_party_imports_of(path: Path) -> set[str]:
    """Top-level names of the packages ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found


@pytest.mark.parametrize(
    "path", sorted(BACKENDS.rglob("*.py")), ids=lambda p: str(p.relative_to(SERVER))
)
def test_backends_see_only_the_model_interface(path: Path) -> None:
    # A backend translates the model interface to a wire format; it knows nothing of the
    # engine, the database or HTTP handlers, and the engine knows nothing of the wire format.
    for imported in server_imports_of(path):
        assert imported.startswith("assistsync.server.backends") or imported == (
            "assistsync.server.runs.model"
        ), f"{path.relative_to(PACKAGE.parent)} imports {imported}"


@pytest.mark.parametrize(
    "path", sorted(SERVER.rglob("*.py")), ids=lambda p: str(p.relative_to(SERVER))
)
def test_only_backends_call_out_with_httpx(path: Path) -> None:
    # The server serves HTTP with its own framework; httpx (the client library) is allowed in
    # the server only where it calls a model backend.
    if BACKENDS in path.parents:
        return
    assert "httpx" not in third_party_imports_of(path), (
        f"{path.relative_to(PACKAGE.parent)} imports httpx; only assistsync/server/backends/ may"
    )


def test_the_backend_checkers_see_imports() -> None:
    assert "httpx" in third_party_imports_of(BACKENDS / "chat.py")
    assert "assistsync.server.runs.model" in server_imports_of(BACKENDS / "chat.py")


# -- start-up: what runs before click -----------------------------------------------------------

BEFORE_CLICK = ["__main__.py", "cli/__init__.py", "cli/helptext.py", "cli/help_generated.py"]


@pytest.mark.parametrize("name", BEFORE_CLICK)
def test_the_start_up_path_imports_only_the_standard_library(name: str) -> None:
    # `assistsync --version` and `assistsync [COMMAND] --help` are answered by these modules
    # without click (see assistsync/__main__.py); a module-level import of click, pydantic or
    # the CLI here would put their cost back on every start. Imports inside functions are
    # the fallback and the help renderer, and are fine.
    tree = ast.parse((PACKAGE / name).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for imported in names:
            top = imported.split(".")[0]
            assert top in sys.stdlib_module_names or imported == "__future__", (
                f"assistsync/{name} imports {imported} at module level"
            )
