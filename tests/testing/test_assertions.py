"""Every assertion kind, holding and failing, evaluated purely against a turn's result."""

from __future__ import annotations

import re
from typing import Any

import pytest

from assistsync.model.testfile import Assertion
from assistsync.testing.assertions import CallRecord, TurnResult, evaluate, subset
from assistsync.testing.loader import Check, Where

HERE = Where("tests/t.yaml", 3, 7)
RESULT = TurnResult(
    user="hi",
    text='{"answer": "30 days"}',
    status="completed",
    calls=(CallRecord("lookup_order", '{"order_id": "42", "n": 1}', "shipped"),),
    citations=("docs/returns.md",),
    tokens=40,
    seconds=2.5,
)
PLAIN = TurnResult(user="hi", text="echo: 30 Days to return", tokens=10)


def check(data: dict[str, Any], cites: str | None = None) -> Check:
    assertion = Assertion.model_validate(data)
    inner = None
    if assertion.not_ is not None:
        inner = Check(assertion.not_, HERE, cites=cites)
    return Check(assertion, HERE, cites=cites, inner=inner)


HOLDS = [
    ({"equals": '{"answer": "30 days"}'}, RESULT),
    ({"contains": "30 days"}, RESULT),
    ({"icontains": "30 DAYS"}, PLAIN),
    ({"regex": r"(?i)\d+ days"}, PLAIN),
    ({"json": True}, RESULT),
    ({"json": {"type": "object", "required": ["answer"]}}, RESULT),
    ({"calls": "lookup_order"}, RESULT),
    ({"calls": "lookup_order", "with": {"order_id": "42"}}, RESULT),
    ({"calls": "lookup_order", "schema": {"required": ["order_id"]}, "times": 1}, RESULT),
    ({"no_calls": True}, PLAIN),
    ({"status": "completed"}, RESULT),
    ({"max_tokens": 40}, RESULT),
    ({"max_seconds": 2.5}, RESULT),
    ({"not": {"contains": "refund"}}, RESULT),
]

FAILS = [
    ({"equals": "30 days"}, RESULT, "expected the answer '30 days'"),
    ({"contains": "30 Days"}, RESULT, "expected '30 Days' in"),
    ({"icontains": "sixty"}, PLAIN, "(any case)"),
    ({"regex": "^30"}, PLAIN, "expected a match of /^30/"),
    ({"json": True}, PLAIN, "expected JSON"),
    ({"json": {"type": "array"}}, RESULT, "does not match the schema: (root): "),
    ({"calls": "cancel_order"}, RESULT, "expected a call of cancel_order, got calls: lookup"),
    ({"calls": "lookup_order", "with": {"order_id": 42}}, RESULT, 'including {"order_id": 42}'),
    ({"calls": "lookup_order", "schema": {"required": ["x"]}}, RESULT, "valid against the schema"),
    ({"calls": "lookup_order", "times": 2}, RESULT, "expected 2 matching call(s)"),
    ({"no_calls": True}, RESULT, 'expected no function calls, got lookup_order({"order_id"'),
    ({"status": "failed"}, RESULT, "expected the run to end failed, it ended completed"),
    ({"max_tokens": 39}, RESULT, "expected at most 39 tokens, the turn used 40"),
    ({"max_seconds": 2}, RESULT, "expected at most 2 s, the turn took 2.50 s"),
    ({"not": {"contains": "30 days"}}, RESULT, 'expected not contains: "30 days", but it holds'),
    ({"rubric": "polite"}, RESULT, "rubric needs a judge model"),
]


@pytest.mark.parametrize(("data", "result"), HOLDS, ids=lambda v: str(v)[:40])
def test_assertion_holds(data: dict[str, Any], result: TurnResult) -> None:
    assert evaluate(check(data), result) is None


@pytest.mark.parametrize(("data", "result", "message"), FAILS, ids=lambda v: str(v)[:40])
def test_assertion_fails_with_a_message(
    data: dict[str, Any], result: TurnResult, message: str
) -> None:
    failure = evaluate(check(data), result)
    assert failure is not None
    assert message in failure


def test_cites_compares_project_paths() -> None:
    assert evaluate(check({"cites": "x"}, cites="docs/returns.md"), RESULT) is None
    failure = evaluate(check({"cites": "x"}, cites="docs/faq.md"), RESULT)
    assert failure == "expected a citation of docs/faq.md, got docs/returns.md"
    assert evaluate(check({"cites": "x"}, cites="docs/faq.md"), PLAIN) == (
        "expected a citation of docs/faq.md, got no citations"
    )


def test_rubric_uses_the_judge_and_its_threshold() -> None:
    graded = check({"rubric": "polite", "threshold": 0.8})
    assert evaluate(graded, RESULT, judge=lambda rubric, turn: 0.9) is None
    assert "graded 0.50" in (evaluate(graded, RESULT, judge=lambda rubric, turn: 0.5) or "")


def test_subset_is_strict_about_types() -> None:
    assert subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not subset({"a": "1"}, {"a": 1})
    assert not subset({"a": True}, {"a": 1})
    assert subset({"a": 1}, {"a": 1.0})
    assert not subset({"a": 1}, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"contains": "a", "icontains": "b"}, "one assertion per list item"),
        ({"contains": "a", "times": 2}, "'times' goes with 'calls', not with 'contains'"),
        ({"icontain": "a"}, "did you mean 'icontains'?"),
        ({"no_calls": False}, "no_calls takes true"),
        ({}, "an assertion needs one of"),
    ],
)
def test_malformed_assertions_say_what_to_write(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Assertion.model_validate(data)
