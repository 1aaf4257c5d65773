"""Assertions evaluated against one turn's result: pure, data in, a failure message out.

:func:`evaluate` returns ``None`` when the assertion holds and one sentence saying what was
expected and what happened when it does not. The only outside help is the judge for ``rubric``
(a function from rubric and transcript to a grade in 0-1), passed in by the runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from assistsync.testing.loader import Check

DEFAULT_RUBRIC_THRESHOLD = 0.7


@dataclass(frozen=True)
class CallRecord:
    """A function call the assistant made, and the output sent back (None: none was)."""

    name: str
    arguments: str
    output: str | None = None

    def parsed(self) -> Any:
        """The arguments as JSON, or None when they are not JSON."""
        try:
            return json.loads(self.arguments)
        except ValueError:
            return None


@dataclass(frozen=True)
class TurnResult:
    """What one turn produced.

    ``status`` is the run's end state (``incomplete`` for a completed run cut short by a token
    limit); ``citations`` are the project paths of the cited files (an id when the file is not
    one assistsync knows); ``error`` is the run's ``last_error`` message, or why the turn could
    not go on (a function call without a stub).
    """

    user: str
    text: str = ""
    status: str = "completed"
    calls: tuple[CallRecord, ...] = ()
    citations: tuple[str, ...] = ()
    tokens: int | None = None
    seconds: float = 0.0
    error: str | None = None


Judge = Callable[[str, TurnResult], float]
"""Grades a turn against a rubric: 0 (fails it completely) to 1 (meets it fully).

A judge that cannot grade this turn (a replayed grade that was never recorded) raises
:class:`Ungraded`, which fails the assertion with its message."""


class Ungraded(Exception):
    """The judge has no grade for this turn; ``str(exc)`` says why and what to do."""


def subset(expected: Any, actual: Any) -> bool:
    """Whether ``expected`` is contained in ``actual``: mappings by key (recursively), lists
    and scalars by equality. ``"42"`` and ``42`` differ, as they do to a function."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return expected == actual
    return type(expected) is type(actual) and bool(expected == actual)


def schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    """Why ``value`` is not valid against the JSON Schema ``schema`` (empty: it is)."""
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(cls(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    ]


def _short(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def evaluate(check: Check, result: TurnResult, judge: Judge | None = None) -> str | None:
    """``None`` when ``check`` holds for ``result``, else what went wrong (one sentence)."""
    a = check.assertion
    kind = check.kind
    text = result.text
    if kind == "not":
        assert check.inner is not None
        if evaluate(check.inner, result, judge) is None:
            return f"expected not {describe(check.inner)}, but it holds"
        return None
    if kind == "equals":
        return None if text == a.equals else f"expected the answer {a.equals!r}, got {_short(text)}"
    if kind == "contains":
        assert a.contains is not None
        return None if a.contains in text else f"expected {a.contains!r} in {_short(text)}"
    if kind == "icontains":
        assert a.icontains is not None
        if a.icontains.casefold() in text.casefold():
            return None
        return f"expected {a.icontains!r} (any case) in {_short(text)}"
    if kind == "regex":
        assert a.regex is not None
        return (
            None
            if re.search(a.regex, text)
            else f"expected a match of /{a.regex}/ in {_short(text)}"
        )
    if kind == "json":
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"expected JSON, got {_short(text)} ({exc})"
        if isinstance(a.json_, dict):
            problems = schema_errors(a.json_, value)
            if problems:
                return f"the JSON answer does not match the schema: {'; '.join(problems[:3])}"
        return None
    if kind == "calls":
        return _calls(check, result)
    if kind == "no_calls":
        if not result.calls:
            return None
        return f"expected no function calls, got {', '.join(_call(c) for c in result.calls)}"
    if kind == "cites":
        if check.cites in result.citations:
            return None
        got = ", ".join(result.citations) if result.citations else "no citations"
        return f"expected a citation of {check.cites}, got {got}"
    if kind == "status":
        if result.status == a.status:
            return None
        why = f" ({result.error})" if result.error else ""
        return f"expected the run to end {a.status}, it ended {result.status}{why}"
    if kind == "max_tokens":
        assert a.max_tokens is not None
        if result.tokens is None:
            return "expected token usage, but the run reported none"
        if result.tokens <= a.max_tokens:
            return None
        return f"expected at most {a.max_tokens} tokens, the turn used {result.tokens}"
    if kind == "max_seconds":
        assert a.max_seconds is not None
        if result.seconds <= a.max_seconds:
            return None
        return f"expected at most {a.max_seconds:g} s, the turn took {result.seconds:.2f} s"
    if kind == "rubric":
        assert a.rubric is not None
        if judge is None:
            return "rubric needs a judge model, and none is configured (ASSISTSYNC_JUDGE_MODEL)"
        try:
            grade = judge(a.rubric, result)
        except Ungraded as exc:
            return str(exc)
        threshold = a.threshold if a.threshold is not None else DEFAULT_RUBRIC_THRESHOLD
        if grade >= threshold:
            return None
        return f"the judge graded {grade:.2f} against the rubric, below {threshold:g}"
    raise AssertionError(f"unknown assertion kind {kind}")  # pragma: no cover


def _call(call: CallRecord) -> str:
    return f"{call.name}({call.arguments})"


def _calls(check: Check, result: TurnResult) -> str | None:
    a = check.assertion
    named = [c for c in result.calls if c.name == a.calls]
    matching = named
    if a.with_ is not None:
        matching = [c for c in matching if subset(a.with_, c.parsed())]
    if a.schema_ is not None:
        schema = a.schema_
        matching = [c for c in matching if not schema_errors(schema, c.parsed())]
    made = ", ".join(_call(c) for c in result.calls) or "none"
    if a.times is not None:
        if len(matching) == a.times:
            return None
        return (
            f"expected {a.times} matching call(s) of {a.calls}, got {len(matching)} (calls: {made})"
        )
    if matching:
        return None
    if not named:
        return f"expected a call of {a.calls}, got calls: {made}"
    detail = []
    if a.with_ is not None:
        detail.append(f"with arguments including {json.dumps(a.with_)}")
    if a.schema_ is not None:
        first = named[0]
        detail.append(
            f"valid against the schema ({'; '.join(schema_errors(a.schema_, first.parsed())[:2])})"
        )
    return f"expected a call of {a.calls} {' and '.join(detail)}, got {made}"


def describe(check: Check) -> str:
    """The assertion as the user wrote it, in one line (``contains: '30 days'``)."""
    a = check.assertion
    if check.kind == "not":
        assert check.inner is not None
        return f"not {{{describe(check.inner)}}}"
    data = a.model_dump(by_alias=True, exclude_none=True)
    return ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items())
