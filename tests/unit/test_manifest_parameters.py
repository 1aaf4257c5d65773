"""Function parameters: the meta-schema check and positions inside JSON text."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistsync.manifest.parameters import (
    SchemaProblem,
    _validator_of,
    json_position,
    schema_problems,
)


def test_a_valid_schema_has_no_problems() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    assert schema_problems(schema) == []


def test_every_problem_at_once_with_its_path() -> None:
    assert schema_problems({"type": "objekt", "required": "q"}) == [
        SchemaProblem(("required",), "'q' is not of type 'array'"),
        SchemaProblem(("type",), "unknown type 'objekt'; did you mean 'object'?"),
    ]


def test_a_property_named_type_is_not_a_type() -> None:
    problems = schema_problems({"type": "object", "properties": {"type": "string"}})
    assert problems == [
        SchemaProblem(("properties", "type"), "'string' is not of type 'object', 'boolean'")
    ]


def test_a_non_string_schema_keyword_is_reported_not_a_crash() -> None:
    assert schema_problems({"$schema": ["x"]}) == [
        SchemaProblem(("$schema",), "['x'] is not of type 'string'")
    ]


def test_one_meta_schema_validator_per_draft() -> None:
    schema_problems({"type": "object"})
    schema_problems({"$schema": "http://json-schema.org/draft-04/schema#"})
    before = _validator_of.cache_info().misses
    # Unknown $schema URLs fall back to draft-07: no validator is built for each of them.
    for i in range(5):
        schema_problems({"$schema": f"https://example.com/{i}", "type": "object"})
        schema_problems({"$schema": "http://json-schema.org/draft-04/schema#"})
    assert _validator_of.cache_info().misses == before


def test_too_deep_a_schema_is_a_problem_not_a_crash() -> None:
    schema: dict[str, object] = {}
    for _ in range(5000):
        schema = {"not": schema}
    assert schema_problems(schema) == [SchemaProblem((), "nested too deeply to check")]


TEXT = """{
  "a\\"}": [1, {"b": "x]}"}],
  "dup": 1,
  "c": {"d": [[], [true, null, "\\u00e9"]]},
  "dup": {"e": 2}
}"""


@pytest.mark.parametrize(
    ("path", "pos"),
    [
        ((), (1, 1)),
        (('a"}',), (2, 11)),
        (('a"}', 1, "b"), (2, 21)),
        (("c", "d", 1, 2), (4, 32)),
        (("dup",), (5, 10)),  # the last duplicate is the one json.loads keeps
        (("dup", "e"), (5, 16)),
        (("c", "nope"), (4, 8)),  # leads nowhere: the deepest value reached
        (("c", "d", 7), (4, 14)),
        (("c", "d", "0"), (4, 14)),  # an index is not a key
    ],
)
def test_json_position(path: tuple[str | int, ...], pos: tuple[int, int]) -> None:
    assert json.loads(TEXT)  # the text is valid JSON
    assert json_position(TEXT, path) == pos


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=200, deadline=None)
@given(_JSON, st.sampled_from([None, 1, 4]))
def test_json_position_finds_every_value(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    for path in _paths(value):
        line, col = json_position(text, path)
        offset = sum(len(t) + 1 for t in text.split("\n")[: line - 1]) + col - 1
        found, _ = json.JSONDecoder().raw_decode(text, offset)
        expected: object = value
        for part in path:
            expected = expected[part]  # type: ignore[index]
        assert found == expected
