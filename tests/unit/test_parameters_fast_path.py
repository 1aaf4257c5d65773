"""The fast path of ``schema_problems``: whatever it calls plainly valid, draft-07's
meta-schema finds valid too (it may only ever skip work, never change a verdict)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from assistsync.manifest.parameters import _plainly_valid, schema_problems

_TYPES = ["array", "boolean", "integer", "null", "number", "object", "string", "objekt", "int"]
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))


def _schemas() -> st.SearchStrategy[Any]:
    kind = st.one_of(
        st.sampled_from(_TYPES),
        st.lists(st.sampled_from(_TYPES), max_size=3),
        _SCALARS,
    )
    leaf = st.fixed_dictionaries(
        {},
        optional={
            "type": kind,
            "description": st.one_of(st.text(max_size=8), _SCALARS),
            "title": st.one_of(st.text(max_size=8), _SCALARS),
            "enum": st.one_of(st.lists(_SCALARS, max_size=3), _SCALARS),
            "required": st.one_of(st.lists(st.sampled_from(["a", "b", 1]), max_size=3), _SCALARS),
            "minimum": st.integers(),
        },
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(
                lambda base, props: {**base, "properties": props},
                leaf,
                st.one_of(st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)),
            ),
            st.builds(lambda base, items: {**base, "items": items}, leaf, inner),
            st.booleans(),
        ),
        max_leaves=8,
    )


_META = Draft7Validator(Draft7Validator.META_SCHEMA)


@settings(max_examples=600, deadline=None)
@given(_schemas())
def test_plainly_valid_schemas_are_valid_under_the_meta_schema(schema: Any) -> None:
    if _plainly_valid(schema):
        assert list(_META.iter_errors(schema)) == []
    if isinstance(schema, dict):
        # and schema_problems agrees with the meta-schema either way
        assert (schema_problems(schema) == []) == (list(_META.iter_errors(schema)) == [])


def test_the_usual_function_schema_takes_the_fast_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": "The order number"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
        },
        "required": ["order_id"],
    }
    assert _plainly_valid(schema)
    assert schema_problems(schema) == []


def test_anything_unusual_goes_to_the_meta_schema() -> None:
    assert not _plainly_valid({"type": "objekt"})
    assert not _plainly_valid({"type": "object", "required": ["a", "a"]})
    assert not _plainly_valid({"type": "object", "$schema": "x"})
    assert not _plainly_valid({"type": ["string", "string"]})
    assert not _plainly_valid({"properties": {"a": True}})
    # unhashable members (found by the parameters-file fuzz test) are "not sure", not a crash
    assert not _plainly_valid({"type": [[]]})
    assert not _plainly_valid({"type": "object", "required": [{}]})
    assert schema_problems({"type": [[]]}) != []
    assert schema_problems({"type": "objekt"}) != []
