"""The schema of a test file (``tests/**/*.yaml``): tests, turns, tool stubs and assertions.

These pydantic models are the one declaration of what a user may write in a test file; the
loader (:mod:`assistsync.testing.loader`) maps their errors back to ``FILE:LINE:COL`` through
the manifest machinery, and ``python -m assistsync.manifest.schema`` publishes them as
``schemas/tests.schema.json``. Imports only pydantic and the standard library.

An assertion is a mapping with exactly one *kind* key (``contains: 30 days``) and, for some
kinds, modifiers beside it (``calls`` takes ``with``, ``schema`` and ``times``; ``rubric``
takes ``threshold``). ``not:`` wraps any assertion.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TEST_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"

KINDS = (
    "equals",
    "contains",
    "icontains",
    "regex",
    "json",
    "calls",
    "no_calls",
    "cites",
    "status",
    "max_tokens",
    "max_seconds",
    "not",
    "rubric",
)
"""Every assertion kind, in the order the README documents them."""

MODIFIERS: dict[str, tuple[str, ...]] = {
    "calls": ("with", "schema", "times"),
    "rubric": ("threshold",),
}
"""The keys allowed beside a kind."""

RUN_STATUSES = ("completed", "failed", "cancelled", "expired", "requires_action", "incomplete")
"""End states a turn can be asserted to reach (``incomplete``: completed with
``incomplete_details``, v1's way of saying a token limit cut the answer)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Assertion(_Strict):
    """One expectation about a turn's result (see the README's assertion reference)."""

    model_config = ConfigDict(title="assertion")

    equals: str | None = Field(None, description="The answer is exactly this text.")
    contains: str | None = Field(None, description="The answer contains this text.")
    icontains: str | None = Field(None, description="... ignoring case.")
    regex: str | None = Field(None, description="A Python regular expression the answer matches.")
    json_: bool | dict[str, Any] | None = Field(
        None,
        alias="json",
        description="The answer parses as JSON (true), or as JSON valid against this schema.",
    )
    calls: str | None = Field(None, description="The assistant called this function.")
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="(calls) its arguments include these values."
    )
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="(calls) its arguments are valid against this schema."
    )
    times: int | None = Field(None, ge=0, description="(calls) exactly this many matching calls.")
    no_calls: bool | None = Field(None, description="The assistant called no function.")
    cites: str | None = Field(
        None, description="The answer cites this project file (a path relative to this file)."
    )
    status: (
        Literal["completed", "failed", "cancelled", "expired", "requires_action", "incomplete"]
        | None
    ) = Field(None, description="The run's end state.")
    max_tokens: int | None = Field(
        None, ge=0, description="The turn used at most this many tokens."
    )
    max_seconds: float | None = Field(None, gt=0, description="The turn took at most this long.")
    not_: Assertion | None = Field(None, alias="not", description="The assertion inside fails.")
    rubric: str | None = Field(None, description="Graded by the judge model against this rubric.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="(rubric) the lowest passing grade, 0-1 (default 0.7)."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kinds = [k for k in data if k in KINDS]
        if not kinds:
            extra = [str(k) for k in data if k not in KINDS]
            close = [m for k in extra for m in difflib.get_close_matches(k, KINDS, n=1)]
            if close:
                raise ValueError(f"unknown assertion {extra[0]!r}; did you mean {close[0]!r}?")
            raise ValueError(f"an assertion needs one of: {', '.join(KINDS)}")
        if len(kinds) > 1:
            raise ValueError(
                f"one assertion per list item: {' and '.join(repr(k) for k in kinds)} are "
                "separate assertions, write each as its own '- ' item"
            )
        kind = kinds[0]
        allowed = MODIFIERS.get(kind, ())
        for key in data:
            modifier = key in {m for ms in MODIFIERS.values() for m in ms}
            if key != kind and modifier and key not in allowed:
                raise ValueError(f"{key!r} goes with {_owner(key)!r}, not with {kind!r}")
        if kind == "no_calls" and data[kind] is not True:
            raise ValueError("no_calls takes true (to assert calls, use 'calls: NAME')")
        return data

    @property
    def kind(self) -> str:
        """The one kind key this assertion was written with."""
        for kind in KINDS:
            attr = {"json": "json_", "not": "not_"}.get(kind, kind)
            if getattr(self, attr) is not None:
                return kind
        raise AssertionError("validated assertions have a kind")  # pragma: no cover


def _owner(modifier: str) -> str:
    return next(kind for kind, ms in MODIFIERS.items() if modifier in ms)


class Stub(_Strict):
    """One output for a function: used when ``when`` (a subset of the arguments) matches,
    or always when ``when`` is absent (the fallback)."""

    model_config = ConfigDict(title="tool stub")

    when: dict[str, Any] | None = Field(
        None, description="Arguments (a subset) this output answers; absent: any arguments."
    )
    output: Any = Field(description="The output; a non-string is sent as JSON.")


class TurnSpec(_Strict):
    """One user message, the run it starts, and what must hold of the result."""

    model_config = ConfigDict(title="turn")

    user: str = Field(description="The user's message.")
    files: list[str] = Field(
        default_factory=list, max_length=10, description="Files attached to this message."
    )
    tools: dict[str, list[Stub]] = Field(
        default_factory=dict,
        description="Outputs for function calls in this turn, by function name, first match wins.",
    )
    expect: list[Assertion] = Field(default_factory=list, description="Assertions.")


class TestSpec(_Strict):
    """One test: a conversation with one assistant, in one thread."""

    model_config = ConfigDict(title="test")
    __test__ = False  # not a pytest class

    assistant: str = Field(description="The key of an assistant in the manifests.")
    turns: list[TurnSpec] = Field(min_length=1, description="One run per turn, in order.")
    repeat: int = Field(1, ge=1, le=100, description="Run the test this many times.")
    pass_: int | None = Field(
        None, alias="pass", ge=1, description="Passes when at least this many repeats pass."
    )

    @model_validator(mode="after")
    def _pass_within_repeat(self) -> TestSpec:
        if self.pass_ is not None and self.pass_ > self.repeat:
            raise ValueError(f"pass ({self.pass_}) cannot exceed repeat ({self.repeat})")
        return self

    @property
    def needed(self) -> int:
        """Repeats that must pass (``pass``, default every repeat)."""
        return self.pass_ if self.pass_ is not None else self.repeat


class TestFile(_Strict):
    """A test file: tests keyed by a stable test key."""

    model_config = ConfigDict(title="assistsync test file")
    __test__ = False

    schema_: str | None = Field(
        None, alias="$schema", description="URL or path of this file's JSON Schema, for editors."
    )
    tests: dict[str, TestSpec] = Field(description="Tests by their stable key.")
