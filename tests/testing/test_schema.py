"""The published test-file schema accepts the quickstart's tests and refuses a typo."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def test_the_quickstart_tests_match_the_published_schema() -> None:
    schema = json.loads((ROOT / "schemas/tests.schema.json").read_text())
    validator = Draft202012Validator(schema)
    data = YAML(typ="safe").load((ROOT / "examples/quickstart/tests/orders.yaml").read_text())
    assert list(validator.iter_errors(data)) == []
    data["tests"]["greets-the-customer"]["turns"][0]["usr"] = "typo"
    assert list(validator.iter_errors(data)) != []
