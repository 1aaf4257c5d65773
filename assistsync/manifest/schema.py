"""The JSON Schemas of the user's files, generated from ``assistsync.model.manifest``.

Regenerate the committed copies after changing the models::

    python -m assistsync.manifest.schema            # writes schemas/*.schema.json
    python -m assistsync.manifest.schema --check    # exit 1 if they are stale

Output is deterministic (sorted keys, indent 2, trailing newline) so diffs show real changes.
``tests/unit/test_schemas.py`` fails when the committed files differ from what this generates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from assistsync.model.manifest import ManifestDocument, ProjectConfig
from assistsync.model.testfile import TestFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"

SCHEMAS: dict[str, type[BaseModel]] = {
    "assistsync.schema.json": ProjectConfig,
    "manifest.schema.json": ManifestDocument,
    "tests.schema.json": TestFile,
}
"""File name in ``schemas/`` -> the model it describes."""

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
"""``schemas/`` at the top of the source tree (the schemas are not shipped in the wheel)."""


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of one model, with ``$schema`` naming the draft."""
    return {"$schema": DRAFT, **model.model_json_schema(by_alias=True)}


def render(model: type[BaseModel]) -> str:
    """The exact text of one schema file."""
    return json.dumps(schema_of(model), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files in ``directory`` that are missing or differ from the models."""
    out = []
    for name, model in SCHEMAS.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(model):
            out.append(name)
    return out


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = directory / name
        path.write_text(render(model), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """``--check``: report stale schemas (exit 1); otherwise regenerate them."""
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        names = stale()
        for name in names:
            print(f"schemas/{name} is stale: run python -m assistsync.manifest.schema")
        return 1 if names else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
