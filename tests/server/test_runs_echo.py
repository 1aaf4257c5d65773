"""The echo model's documented rules, one by one (it is pure: conversation in, events out)."""

from __future__ import annotations

import json
from typing import Any

from assistsync.server.runs.echo import EchoModel, pieces, tokens
from assistsync.server.runs.model import (
    Failure,
    Incomplete,
    ModelEvent,
    ModelRequest,
    RunConfig,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallRequest,
    Turn,
    Usage,
    truncate,
)

TOOLS = (
    {"type": "function", "function": {"name": "lookup_order"}},
    {"type": "function", "function": {"name": "refund"}},
    {"type": "retrieval"},
)


def answer(*turns: Turn, **config: Any) -> list[ModelEvent]:
    settings: dict[str, Any] = {"model": "echo", "instructions": "", "tools": TOOLS, **config}
    return list(EchoModel().respond(ModelRequest(RunConfig(**settings), turns)))


def text(events: list[ModelEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_text_answers_stream_in_several_deltas_and_are_deterministic() -> None:
    events = answer(Turn("user", "first"), Turn("assistant", "x"), Turn("user", "how are you"))
    assert text(events) == "echo: how are you"
    assert sum(isinstance(e, TextDelta) for e in events) == 4
    assert events == answer(
        Turn("user", "first"), Turn("assistant", "x"), Turn("user", "how are you")
    )
    assert pieces("  a b  ") == ["  a ", "b  "]


def test_calls_stream_in_fragments_before_the_whole_calls() -> None:
    events = answer(Turn("user", 'call lookup_order {"id": 12345}\ncall refund'))
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert calls == [
        ToolCallRequest("lookup_order", '{"id": 12345}'),
        ToolCallRequest("refund", "{}"),
    ]
    # every fragment comes before the first whole call; one call after the other
    assert events.index(calls[0]) > events.index(fragments[-1])
    assert [f.index for f in fragments] == [0, 0, 0, 1, 1]
    assert [f.name for f in fragments] == ["lookup_order", None, None, "refund", None]
    for index, call in enumerate(calls):
        joined = "".join(f.arguments for f in fragments if f.index == index)
        assert joined == call.arguments


def test_usage_is_one_token_per_four_characters() -> None:
    events = answer(Turn("user", "12345678"), instructions="abcd")
    assert events[-1] == Usage(tokens(12), tokens(len("echo: 12345678")))
    assert tokens(0) == 0
    assert tokens(1) == 1
    assert tokens(8) == 2


def test_call_lines_become_parallel_calls_of_known_functions() -> None:
    message = 'call lookup_order {"id": 1}\ncall refund\ncall nope {}\ncall refund [1]\nhello'
    events = answer(Turn("user", message))
    calls = [e for e in events if isinstance(e, ToolCallRequest)]
    assert calls == [ToolCallRequest("lookup_order", '{"id": 1}'), ToolCallRequest("refund", "{}")]
    assert not any(isinstance(e, TextDelta) for e in events)


def test_tool_choice_none_and_forced() -> None:
    message = "call refund {}"
    assert text(answer(Turn("user", message), tool_choice="none")) == "echo: call refund {}"
    forced = {"type": "function", "function": {"name": "lookup_order"}}
    assert ToolCallRequest("lookup_order", "{}") in answer(Turn("user", "hi"), tool_choice=forced)
    missing = {"type": "function", "function": {"name": "absent"}}
    [failure] = answer(Turn("user", "hi"), tool_choice=missing)
    assert isinstance(failure, Failure)
    assert failure.code == "invalid_prompt"
    retrieval = {"type": "retrieval"}
    events = answer(Turn("user", message), tool_choice=retrieval)
    assert any(isinstance(e, ToolCallRequest) for e in events)


def test_after_outputs_the_answer_uses_them() -> None:
    calls = (
        ToolCall("call_1", "lookup_order", "{}", "shipped"),
        ToolCall("call_2", "refund", "{}", "ok"),
    )
    turns = (Turn("user", "call lookup_order\ncall refund"), Turn("assistant", tool_calls=calls))
    assert text(answer(*turns)) == "echo: lookup_order returned shipped; refund returned ok"
    as_json = json.loads(text(answer(*turns, response_format={"type": "json_object"})))
    assert as_json == {"tool_outputs": {"lookup_order": "shipped", "refund": "ok"}}


def test_json_object_answers_are_json() -> None:
    events = answer(Turn("user", 'say "hi"'), response_format={"type": "json_object"})
    assert json.loads(text(events)) == {"echo": 'say "hi"'}
    assert text(answer()) == "echo: (no user message)"


def test_failure_lines() -> None:
    [failure] = answer(Turn("user", "hello\necho:fail invalid_prompt"))
    assert failure == Failure(
        "invalid_prompt", "The echo model failed as asked ('echo:fail invalid_prompt')."
    )
    [other] = answer(Turn("user", "echo:fail whatever"))
    assert isinstance(other, Failure)
    assert other.code == "server_error"


def test_prompt_limit_ends_without_an_answer() -> None:
    events = answer(Turn("user", "x" * 2000), max_prompt_tokens=256)
    assert events == [Usage(500, 0), Incomplete("max_prompt_tokens")]


def test_sleep_waits_on_the_given_sleeper() -> None:
    waited: list[float] = []

    def sleep(seconds: float) -> bool:
        waited.append(seconds)
        return False  # as when the run is cancelled meanwhile

    config = RunConfig(model="echo", instructions="")
    events = list(
        EchoModel().respond(ModelRequest(config, (Turn("user", "echo:sleep 2.5"),), sleep))
    )
    assert waited == [2.5]
    assert events == []


def test_truncation_keeps_the_last_messages() -> None:
    turns = [Turn("user", str(i)) for i in range(5)]
    assert truncate(turns, {"type": "last_messages", "last_messages": 2}) == tuple(turns[-2:])
    assert truncate(turns, {"type": "auto"}) == tuple(turns)
