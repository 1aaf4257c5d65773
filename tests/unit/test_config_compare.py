"""Tools compare as the API sees them: key order never matters; ``1``, ``1.0`` and ``true``
(equal to Python's ``==``) differ; integers beyond 64 bits still compare."""

from __future__ import annotations

from typing import Any

import pytest

from assistsync.model import AssistantConfig


def _tools(parameters: dict[str, Any]) -> AssistantConfig:
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    return AssistantConfig(model="gpt-4", tools=(tool,))


@pytest.mark.parametrize(
    ("mine", "theirs", "differ"),
    [
        ({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [1, 2]}, "a": 1}, False),
        ({"minimum": 1}, {"minimum": True}, True),
        ({"minimum": 1}, {"minimum": 1.0}, True),
        ({"minimum": 0.0}, {"minimum": -0.0}, True),
        ({"default": [True]}, {"default": [1]}, True),
        ({"maximum": 2**70}, {"maximum": 2**70}, False),
        ({"maximum": 2**70}, {"maximum": float(2**70)}, True),
        ({"enum": ["x", "y"]}, {"enum": ["y", "x"]}, True),
    ],
)
def test_tools_differ_exactly_where_the_api_would_see_a_difference(
    mine: dict[str, Any], theirs: dict[str, Any], differ: bool
) -> None:
    found = _tools(mine).differing_fields(_tools(theirs))
    assert found == (("tools",) if differ else ())
