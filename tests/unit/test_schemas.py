"""The committed JSON Schemas match the models, and accept the example project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from assistsync.manifest import schema

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


@pytest.mark.parametrize("name", sorted(schema.SCHEMAS))
def test_committed_schema_is_current(name: str) -> None:
    path = schema.SCHEMA_DIR / name
    assert path.is_file(), f"schemas/{name} is missing: run python -m assistsync.manifest.schema"
    assert path.read_text(encoding="utf-8") == schema.render(schema.SCHEMAS[name]), (
        f"schemas/{name} is stale: run python -m assistsync.manifest.schema and commit it"
    )


def test_check_mode_reports_stale_files(tmp_path: Path) -> None:
    assert schema.stale(tmp_path) == sorted(schema.SCHEMAS)
    schema.write(tmp_path)
    assert schema.stale(tmp_path) == []


def test_schema_carries_the_api_limits() -> None:
    defs = schema.schema_of(schema.SCHEMAS["manifest.schema.json"])["$defs"]
    props = defs["AssistantManifest"]["properties"]
    assert {"type": "string", "maxLength": 256} in props["name"]["anyOf"]
    assert props["tools"]["maxItems"] == 128
    assert props["files"]["maxItems"] == 20
    assert props["metadata"]["maxProperties"] == 15
    assert props["metadata"]["propertyNames"]["maxLength"] == 64
    assert defs["AssistantManifest"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("document", "name"),
    [
        ("assistsync.yaml", "assistsync.schema.json"),
        ("assistants/support.yaml", "manifest.schema.json"),
    ],
)
def test_example_validates_against_the_schema(document: str, name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = YAML(typ="safe", pure=True).load((EXAMPLE / document).read_text())
    spec = json.loads((schema.SCHEMA_DIR / name).read_text())
    jsonschema.Draft202012Validator.check_schema(spec)
    jsonschema.Draft202012Validator(spec).validate(data)
    bad = dict(data, unknown=1)
    assert not jsonschema.Draft202012Validator(spec).is_valid(bad)
